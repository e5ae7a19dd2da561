"""Nothing that names a patient is stored or relayed in clear (issue 18), on SQLite and
on PostgreSQL, with the Redis broker and the local blob store.

Marker strings go into a group's name, a patient case's title and header, a message, a
chat file's name and content, a referral's message, patient fields, and a referral
document's name and content. Then the database files (SQLite's, or PostgreSQL's data
directory after a checkpoint, WAL included), everything Redis was asked to do
(``redis-cli MONITOR``, started before the server) and the blob store are searched for
them: none is there. The members and the referral's two parties read them all in clear.
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from attachment_kit import pdf_with_text
from directory_kit import PATIENT, call, small_directory

from clients.python import Decrypted, EncryptedClient
from clients.python.attachments import upload_document
from harness import ServerUnderTest, practitioner, server_on
from services import RedisServer


def _marker(kind: str) -> str:
    return f"{kind}{secrets.token_hex(6).upper()}"


MARKERS = ("GROUPE", "CAS", "ENTETE", "TEXTE", "FICHIER", "ADRESSAGE", "PATIENTE", "DOC")


def files_under(folder: Path) -> Iterator[Path]:
    return (p for p in sorted(folder.rglob("*")) if p.is_file())


def sqlite_bytes(folder: Path) -> bytes:
    """The SQLite database, its WAL and shm."""
    return b"".join(p.read_bytes() for p in folder.glob("confrere.db*"))


def tree_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in files_under(folder))


def found_in(data: bytes, markers: dict[str, str]) -> list[str]:
    """The markers ``data`` holds in clear (as UTF-8 or UTF-16, any case)."""
    lowered = data.lower()
    hits = []
    for kind, marker in markers.items():
        forms = (marker.encode(), marker.lower().encode(), marker.encode("utf-16-le"))
        if any(form in data or form in lowered for form in forms):
            hits.append(kind)
    return hits


@pytest.fixture
def monitored_redis(own_redis: RedisServer, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The Redis URL, and a file receiving everything Redis is asked (MONITOR)."""
    out = tmp_path / "redis-monitor.log"
    with out.open("wb") as sink:
        monitor = subprocess.Popen(
            ["redis-cli", "-s", str(own_redis.socket), "monitor"], stdout=sink
        )
        try:
            yield own_redis.url, out
        finally:
            monitor.terminate()
            monitor.wait(10)


async def _until_text(client: EncryptedClient, room: str, text: str) -> None:
    async with asyncio.timeout(15):
        while True:
            item = await client.recv()
            if isinstance(item, Decrypted) and item.room == room and item.text == text:
                return


@pytest.mark.parametrize("adapter", ["sqlite", "postgres"])
async def test_markers_are_nowhere_in_clear(
    adapter: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monitored_redis: tuple[str, Path],
) -> None:
    redis_url, monitor_log = monitored_redis
    markers = {kind: _marker(kind) for kind in MARKERS}
    m = markers
    async with server_on(adapter, request, tmp_path, broker_url=redis_url) as server:
        ids = await _use_everything(server, tmp_path, m)
        stored = await _database_bytes(adapter, request, server, tmp_path)
        # Read here: a PostgreSQL database is dropped when the server goes.
        assert all(i.encode() in stored for i in ids), "not the right database files"
        assert found_in(stored, markers) == []
    blobs = list(files_under(tmp_path / "blobs"))
    assert len(blobs) >= 2  # the chat file and the referral document
    for blob in blobs:
        assert found_in(blob.read_bytes(), markers) == [], blob
    traffic = monitor_log.read_bytes()
    assert ids[0].encode() in traffic  # the room's messages went through this Redis
    assert found_in(traffic, markers) == []


async def _use_everything(server: ServerUnderTest, tmp_path: Path, m: dict[str, str]) -> list[str]:
    """Every way a marker may reach the server; returns ids the storage must hold."""
    await small_directory(server.store)
    alice = EncryptedClient(await practitioner(server.url, server.store), tmp_path / "a.key")
    bob = EncryptedClient(await practitioner(server.url, server.store), tmp_path / "b.key")
    await alice.connect()
    await bob.connect()
    try:
        group = await alice.create_room("group", [bob.user_id], name=f"Groupe {m['GROUPE']}")
        case = await alice.create_room(
            "patient_case",
            [bob.user_id],
            name=f"Mme {m['CAS']}, FA paroxystique",
            header=f"Patiente {m['ENTETE']}, née en 1950".encode(),
        )
        await alice.send_text(group.id, "bonjour")
        await alice.send_text(case.id, f"Bilan de {m['TEXTE']}")
        report = tmp_path / f"cr-{m['FICHIER']}.pdf"
        report.write_bytes(pdf_with_text(f"Compte rendu {m['FICHIER']}"))
        await alice.send_file(case.id, report, text="le compte rendu")
        report.unlink()
        await _until_text(bob, group.id, "bonjour")
        await _until_text(bob, case.id, "le compte rendu")
        # Bob, a member, reads them all.
        group_info, case_info = await bob.client.room(group.id), await bob.client.room(case.id)
        assert group_info.name is not None and case_info.name is not None
        assert bob.decrypt_name(group.id, group_info.name) == f"Groupe {m['GROUPE']}"
        assert m["CAS"] in bob.decrypt_name(case.id, case_info.name)
        assert case_info.header is not None
        assert m["ENTETE"].encode() in bob.decrypt_header(case.id, case_info.header)
    finally:
        await alice.close()
        await bob.close()
    appointment = await _referral(server, m)
    return [case.id, group.id, appointment]


async def _referral(server: ServerUnderTest, m: dict[str, str]) -> str:
    doctor = await practitioner(server.url, server.store)
    await server.store.link_profile("faure", doctor.user_id)
    me = await practitioner(server.url, server.store)
    document = await upload_document(
        me, pdf_with_text(f"Lettre {m['DOC']}"), name=f"Courrier {m['DOC']}.pdf"
    )
    patient: dict[str, Any] = {
        **PATIENT,
        "last_name": f"Durand{m['PATIENTE']}",
        "birth_place": f"Douai{m['PATIENTE']}",
        "email": f"{m['PATIENTE'].lower()}@email.com",
    }
    body = {
        "slot": "s-open",
        "motive": "m-first",
        "patient": patient,
        "message": f"Patiente adressée pour avis ({m['ADRESSAGE']}).",
        "attachments": [document["id"]],
    }
    booked = await call(me, server, "POST", "/v1/referrals", json=body)
    assert booked.status_code == 201, booked.text
    appointment = booked.json()["appointment"]
    # The practitioner reads it all in clear; the uploader sees the document's name.
    seen = await call(doctor, server, "GET", f"/v1/referrals/{appointment['id']}")
    shown = seen.json()["appointment"]
    assert shown["patient"]["last_name"] == patient["last_name"]
    assert shown["message"] == body["message"]
    meta = await call(me, server, "GET", f"/v1/attachments/{document['id']}/meta")
    assert meta.json()["attachment"]["name"] == f"Courrier {m['DOC']}.pdf"
    got = await call(
        doctor, server, "GET", f"/v1/referrals/{appointment['id']}/documents/{document['id']}"
    )
    assert got.status_code == 200 and m["DOC"] in got.headers["content-disposition"]
    assert m["DOC"].encode() in got.content
    return str(appointment["id"])


async def _database_bytes(
    adapter: str, request: pytest.FixtureRequest, server: ServerUnderTest, tmp_path: Path
) -> bytes:
    if adapter == "sqlite":
        return sqlite_bytes(tmp_path)
    pg = request.getfixturevalue("postgres_server")
    assert pg.data_dir is not None, "searching PostgreSQL's files needs the tests' own server"
    conn = await asyncpg.connect(pg.url)
    try:
        await conn.execute("CHECKPOINT")  # the tables' pages on disk, not only the WAL
    finally:
        await conn.close()
    return tree_bytes(pg.data_dir)
