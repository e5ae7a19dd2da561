"""The retention sweeper on a live node: a closed patient case past its time is really
deleted (messages, members, header, attachment blob and row) and reported in the audit
log; an open case and a recently closed one are kept."""

from __future__ import annotations

import msgpack
import pytest
from attachment_kit import sample

from clients.python.attachments import upload_file
from clients.python.errors import ServerError
from clients.python.rest import request
from harness import ServerUnderTest, connected, practitioner, sealed
from protocol.crypto.envelope import wrap_header
from server.clock import now_ms
from server.retention import Retention, sweep_retention
from storage.audit import AuditQuery


async def test_a_closed_case_past_its_time_is_purged_with_its_files(
    server: ServerUnderTest,
) -> None:
    alice = await practitioner(server.url, server.store)
    bob = await practitioner(server.url, server.store)
    a = await connected(alice)
    try:
        header = wrap_header(a.device_id, sealed(b"enc"))
        old = await a.create_room("patient_case", [bob.user_id])
        kept = await a.create_room("patient_case", [bob.user_id])
        await a.update_room(old.id, header=header)
        ref = await upload_file(alice, old.id, sample("application/pdf", 5000))
        await a.send(old.id, sealed(msgpack.packb({"att": ref.id})), att=[ref.id])
        await a.send(old.id, sealed(b"compte rendu"))
        await a.send(kept.id, sealed(b"suivi"))
        await a.update_room(old.id, status="closed")
    finally:
        await a.close()
    svc = server.services
    assert await svc.blobs.exists(ref.id)

    # A policy of one day: nothing is due yet.
    one_day = Retention((("patient_case", 1.0),))
    nothing = await sweep_retention(svc.store, svc.blobs, one_day, now_ms())
    assert (nothing.rooms, nothing.attachments) == (0, 0)

    # Two days later the closed case is due; the open one never is.
    result = await sweep_retention(svc.store, svc.blobs, one_day, now_ms() + 2 * 86_400_000)
    assert (result.rooms, result.attachments, result.failed) == (1, 1, 0)
    assert not await svc.blobs.exists(ref.id)
    assert await svc.store.attachment(ref.id) is None
    assert await svc.store.timeline(old.id, 0, 100) == []
    assert len(await svc.store.timeline(kept.id, 0, 100)) >= 2
    room = await svc.store.room(old.id)
    assert room is not None and room.status == "purged" and room.header is None

    # The members no longer see it, nor its file.
    listed = await request(server.url, "GET", "/v1/rooms", token=bob.token)
    assert [r["id"] for r in listed["rooms"]] == [kept.id]
    with pytest.raises(ServerError) as refused:
        await request(server.url, "GET", f"/v1/attachments/{ref.id}/meta", token=bob.token)
    assert refused.value.code == "not_found"

    [entry] = await svc.store.audit_entries(AuditQuery(action="retention.purge"))
    assert entry.target == old.id
    assert entry.detail["kind"] == "patient_case" and entry.detail["attachments"] == 1


def test_retention_policy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONFRERE_RETENTION_PATIENT_CASE_DAYS", "30")
    monkeypatch.setenv("CONFRERE_RETENTION_GROUP_DAYS", "0")
    monkeypatch.setenv("CONFRERE_RETENTION_INTERVAL_S", "60")
    assert Retention.from_env() == Retention((("patient_case", 30.0),), 60.0)
    monkeypatch.delenv("CONFRERE_RETENTION_PATIENT_CASE_DAYS")
    assert dict(Retention.from_env().days) == {"patient_case": 20 * 365.0}
