"""The server key (``server.server_key``): a deployment whose database is not SQLite
(so possibly several nodes) must name a shared key; a node refuses to start without
one instead of making a key of its own that the other nodes could not read with."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from harness import SERVER_KEY, server_process, settings_for
from protocol.crypto.errors import BadKey, CryptoError, Tampered
from server.server_key import FIELD_PREFIX, MissingServerKey, ServerKey, load_server_key


def test_a_node_not_on_sqlite_needs_a_shared_key(tmp_path: Path) -> None:
    postgres = settings_for(
        tmp_path, database_url="postgresql://db.example/confrere", server_key=""
    )
    with pytest.raises(MissingServerKey, match="CONFRERE_SERVER_KEY"):
        load_server_key(postgres)
    shared = tmp_path / "shared.key"
    shared.write_text(SERVER_KEY + "\n")
    shared.chmod(0o600)
    named = load_server_key(
        settings_for(
            tmp_path, database_url=postgres.database_url, server_key="", server_key_file=str(shared)
        )
    )
    assert named == load_server_key(settings_for(tmp_path, server_key=SERVER_KEY))
    # SQLite is one node: the key is made beside the database.
    alone = load_server_key(settings_for(tmp_path, server_key=""))
    assert (tmp_path / "server.key").exists() and alone != named


async def test_a_postgres_node_without_a_key_refuses_to_start(
    tmp_path: Path, postgres_database: str
) -> None:
    node = server_process(settings_for(tmp_path, database_url=postgres_database))
    node.extra_env["CONFRERE_SERVER_KEY"] = ""
    try:
        with pytest.raises(RuntimeError, match="server exited"):
            await node.start()
    finally:
        node.close()
    node = server_process(settings_for(tmp_path, database_url=postgres_database))
    try:
        await node.start()  # with the deployment's key, it starts
    finally:
        node.close()


def test_sealed_fields_open_under_the_key_and_its_purpose_only(tmp_path: Path) -> None:
    key = load_server_key(settings_for(tmp_path))
    sealed = key.seal_field(b"Mme Durand", "referral.patient")
    assert sealed.startswith(FIELD_PREFIX) and "Durand" not in sealed
    assert sealed != key.seal_field(b"Mme Durand", "referral.patient")  # fresh nonce
    assert key.open_field(sealed, "referral.patient") == b"Mme Durand"
    with pytest.raises(Tampered):
        key.open_field(sealed, "referral.message")  # moved to another column
    other = ServerKey(bytes(32))
    with pytest.raises(BadKey, match=key.id):
        other.open_field(sealed, "referral.patient")
    raw = bytearray(base64.b64decode(sealed.removeprefix(FIELD_PREFIX)))
    raw[-1] ^= 1
    with pytest.raises(Tampered):
        key.open_field(FIELD_PREFIX + base64.b64encode(raw).decode(), "referral.patient")
    for bad in ("sealed:!!", "sealed:AAAA", "plain text"):
        with pytest.raises(CryptoError):
            key.open_field(bad, "referral.patient")


def test_rotation_reads_what_the_previous_key_sealed_and_seals_under_the_new(
    tmp_path: Path,
) -> None:
    old = load_server_key(settings_for(tmp_path))
    sealed = old.seal_field(b"0645372653", "outbox.recipient")
    new_text = base64.b64encode(bytes(range(32))).decode()
    rotated = load_server_key(
        settings_for(tmp_path, server_key=new_text, server_key_previous=f" {SERVER_KEY} ,")
    )
    assert rotated.id != old.id and rotated.for_id(old.id) == ServerKey(old.key)
    assert rotated.open_field(sealed, "outbox.recipient") == b"0645372653"
    fresh = rotated.seal_field(b"x", "outbox.recipient")
    with pytest.raises(BadKey):
        old.open_field(fresh, "outbox.recipient")  # a node left on the old key cannot
    assert rotated.for_id("0" * 16) is None
    assert SERVER_KEY not in repr(rotated) and new_text not in repr(rotated)
    with pytest.raises(ValueError, match="CONFRERE_SERVER_KEY_PREVIOUS"):
        load_server_key(settings_for(tmp_path, server_key_previous="short"))
