"""Audit log and retention contract, identical for every adapter."""

from __future__ import annotations

import pytest
from test_store_contract import user

from storage import Store
from storage.audit import AuditQuery, NewAuditEntry
from storage.types import NewAttachment, NewMessage


async def test_audit_entries_append_and_filter(store: Store) -> None:
    ids = await store.append_audit(
        [
            NewAuditEntry("admin.role_granted", "adm", "u1", {"role": "reviewer"}),
            NewAuditEntry("patient.referral_viewed", "doc", "ref1"),
            NewAuditEntry("admin.unverified", None, "u2", {"é": 1}),
        ],
        now=5000,
    )
    assert ids == sorted(ids) and len(ids) == 3
    everything = await store.audit_entries(AuditQuery())
    assert [e.id for e in everything] == ids[::-1]  # newest first
    assert everything[0].detail == {"é": 1} and everything[0].actor is None
    assert everything[2].ts == 5000 and everything[2].target == "u1"

    admin = await store.audit_entries(AuditQuery(action="admin."))
    assert [e.action for e in admin] == ["admin.unverified", "admin.role_granted"]
    assert [e.id for e in await store.audit_entries(AuditQuery(actor="doc"))] == [ids[1]]
    assert [e.id for e in await store.audit_entries(AuditQuery(target="u2"))] == [ids[2]]
    assert await store.audit_entries(AuditQuery(action="admin")) == []  # exact unless "."
    page = await store.audit_entries(AuditQuery(before_id=ids[2], limit=1))
    assert [e.id for e in page] == [ids[1]]
    assert await store.audit_entries(AuditQuery(since=5001)) == []


async def test_the_audit_log_refuses_changes(store: Store) -> None:
    """Append-only is the database's rule, not only the interface's: even SQL that
    bypasses the store cannot change or delete an entry."""
    await store.append_audit([NewAuditEntry("admin.verified", None, "u1")], now=1)
    for sql in ("UPDATE audit_log SET action = 'x'", "DELETE FROM audit_log"):
        with pytest.raises(Exception, match="append-only"):
            await _raw_sql(store, sql)
    assert len(await store.audit_entries(AuditQuery())) == 1


async def _raw_sql(store: Store, sql: str) -> None:
    from storage.sql.store import SqlStore

    assert isinstance(store, SqlStore)
    await store.db.run("raw", lambda c: c.execute(sql), "transaction")


async def _closed_case(store: Store, closed_at: int) -> tuple[str, str, str]:
    """A patient case with two messages and one attachment, closed at ``closed_at``."""
    owner, other = await user(store), await user(store)
    room, _ = await store.create_room("patient_case", owner, [other], "Cas", b"hdr", now=100)
    att = await store.create_attachment(NewAttachment(owner, "chat", "image/png", 150, room.id))
    await store.complete_attachment(att.id, 10, "00" * 32)
    results = await store.append_messages(
        [
            NewMessage(room.id, owner, "dev-" + owner, f"c1-{owner}", b"x", 200, (att.id,)),
            NewMessage(room.id, other, "dev-" + other, f"c2-{other}", b"y", 300),
        ]
    )
    assert all(r.refused is None for r in results)
    await store.update_room(room.id, owner, closed_at, status="closed")
    return room.id, owner, att.id


async def test_closed_rooms_are_purged_after_their_time(store: Store) -> None:
    old, owner, att = await _closed_case(store, closed_at=1_000)
    recent, _, _ = await _closed_case(store, closed_at=9_000)
    open_group, _ = await store.create_room("group", owner, [], "G", None, now=100)

    assert await store.rooms_to_purge("patient_case", closed_before=5_000, limit=10) == [old]
    assert await store.rooms_to_purge("group", closed_before=10**12, limit=10) == []

    purged = await store.purge_room(old, closed_before=5_000, now=6_000)
    assert purged is not None
    assert purged.kind == "patient_case" and purged.attachments == (att,)
    assert purged.items >= 4  # member.joined, two messages, room.updated
    # Really gone: no timeline, no members, no header; the attachment claimed.
    assert await store.timeline(old, 0, 100) == []
    assert await store.membership(old, owner) is None
    room = await store.room(old)
    assert room is not None and room.status == "purged" and room.header is None
    assert [r.id for r, _ in await store.rooms_of(owner)] == [open_group.id]
    assert await store.purged_attachments(10) == [att]
    claimed = await store.attachment(att)
    assert claimed is not None and claimed.state == "deleting"
    await store.delete_attachment(att)
    assert await store.purged_attachments(10) == []

    # Once only, and never a case closed too recently.
    assert await store.purge_room(old, closed_before=5_000, now=6_000) is None
    assert await store.purge_room(recent, closed_before=5_000, now=6_000) is None
    assert await store.timeline(recent, 0, 100) != []

    [entry] = await store.audit_entries(AuditQuery(action="retention.purge"))
    assert entry.target == old and entry.actor is None and entry.ts == 6_000
    assert entry.detail == {"kind": "patient_case", "items": purged.items, "attachments": 1}


async def test_a_reopened_case_is_not_purged(store: Store) -> None:
    room, owner, _ = await _closed_case(store, closed_at=1_000)
    await store.update_room(room, owner, 2_000, status="open")
    assert await store.rooms_to_purge("patient_case", closed_before=5_000, limit=10) == []
    assert await store.purge_room(room, closed_before=5_000, now=6_000) is None
