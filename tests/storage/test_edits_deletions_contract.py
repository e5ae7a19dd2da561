"""Edits and deletion for everyone (SPEC.md §4.2 ``edits``, §4.20), on every adapter:
who may edit and delete, the tombstones, and the ciphertext gone from the database
itself (the SQLite file's bytes; the PostgreSQL table)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

import asyncpg
from test_store_contract import user

from storage import Store, open_store
from storage.types import NewMessage

DAY = 24 * 3600 * 1000


def _msg(room: str, sender: str, cid: str, body: bytes, ts: int = 5000, **kw: int) -> NewMessage:
    return NewMessage(room, sender, f"dev-{sender}", cid, body, ts, **kw)  # type: ignore[arg-type]


async def _one(store: Store, m: NewMessage) -> tuple[int | None, str | None]:
    [result] = await store.append_messages([m])
    return (None if result.item is None else result.item.seq), result.refused


async def test_only_the_author_edits_an_original_within_the_window(store: Store) -> None:
    a, b = await user(store), await user(store)
    room, _ = await store.create_room("group", a, [b], None, None, 1)
    original, _ = await _one(store, _msg(room.id, a, "c1", b"hello", ts=10 * DAY))
    assert original == 2
    edit, refused = await _one(
        store, _msg(room.id, a, "c2", b"hello!", ts=11 * DAY, edits=2, edits_since=9 * DAY)
    )
    assert (edit, refused) == (3, None)
    # Someone else's message; an edit of an edit; an event; a seq that does not exist.
    assert await _one(store, _msg(room.id, b, "c3", b"x", edits=2)) == (None, "edit_forbidden")
    assert await _one(store, _msg(room.id, a, "c4", b"x", edits=3)) == (None, "edit_missing")
    assert await _one(store, _msg(room.id, a, "c5", b"x", edits=1)) == (None, "edit_missing")
    assert await _one(store, _msg(room.id, a, "c6", b"x", edits=99)) == (None, "edit_missing")
    # Too late: the original is older than the window's start.
    late = _msg(room.id, a, "c7", b"x", edits=2, edits_since=10 * DAY + 1)
    assert await _one(store, late) == (None, "edit_forbidden")
    items = await store.timeline(room.id, 0, 10)
    assert [(i.seq, i.edits) for i in items if i.kind == "msg"] == [(2, None), (3, 2)]


async def test_an_edit_may_name_a_message_of_its_own_batch(store: Store) -> None:
    a = await user(store)
    room, _ = await store.create_room("group", a, [], None, None, 1)
    results = await store.append_messages(
        [_msg(room.id, a, "o", b"first"), _msg(room.id, a, "e", b"second", edits=2)]
    )
    assert [(r.item.seq if r.item else None, r.refused) for r in results] == [(2, None), (3, None)]


async def test_deletion_rules(store: Store) -> None:
    owner, admin, b, c = [await user(store) for _ in range(4)]
    room, _ = await store.create_room("group", owner, [admin, b, c], None, None, 1)
    await store.set_role(room.id, admin, "admin", owner, 2)  # seq 2
    by_b, _ = await _one(store, _msg(room.id, b, "b1", b"from b", ts=10 * DAY))  # seq 3
    assert by_b == 3
    # c is a plain member: not its message. b, too late. An event is no message.
    refused = await store.delete_message(room.id, 3, c, 10 * DAY, 0)
    assert refused.item is None and refused.refused == "forbidden"
    late = await store.delete_message(room.id, 3, b, 13 * DAY, 11 * DAY)
    assert late.refused == "forbidden"
    assert (await store.delete_message(room.id, 2, owner, 1, 0)).refused == "missing"
    assert (await store.delete_message(room.id, 3, "stranger", 1, 0)).refused == "not_member"
    assert (await store.delete_message("no-room", 3, b, 1, 0)).refused == "not_member"
    # An admin deletes any message, however old.
    done = await store.delete_message(room.id, 3, admin, 13 * DAY, 11 * DAY)
    assert done.item is not None and done.item.kind == "msg.deleted" and done.item.seq == 4
    assert done.item.meta == {"by": admin, "target": 3}
    assert (await store.delete_message(room.id, 3, admin, 13 * DAY, 0)).refused == "missing"
    # The author, within the window.
    mine, _ = await _one(store, _msg(room.id, c, "c1", b"from c", ts=20 * DAY))
    ok = await store.delete_message(room.id, mine or 0, c, 20 * DAY + 5, 19 * DAY)
    assert ok.item is not None and ok.item.seq == 6


async def test_direct_rooms_have_no_moderator_and_closed_cases_are_read_only(
    store: Store,
) -> None:
    a, b = await user(store), await user(store)
    direct, _ = await store.create_room("direct", a, [b], None, None, 1)
    seq, _ = await _one(store, _msg(direct.id, a, "d1", b"hi"))
    assert (await store.delete_message(direct.id, seq or 0, b, 6000, 0)).refused == "forbidden"
    case, _ = await store.create_room("patient_case", a, [b], None, None, 1)
    in_case, _ = await _one(store, _msg(case.id, b, "k1", b"obs"))
    await store.update_room(case.id, a, 7000, status="closed")
    closed = await store.delete_message(case.id, in_case or 0, a, 8000, 0)
    assert closed.refused == "closed"


async def test_a_deleted_message_and_its_edits_become_tombstones(store: Store) -> None:
    a, b = await user(store), await user(store)
    room, _ = await store.create_room("group", a, [b], None, None, 1)
    await _one(store, _msg(room.id, a, "o", b"original"))  # 2
    await _one(store, _msg(room.id, a, "e", b"edited", edits=2))  # 3
    await _one(store, _msg(room.id, b, "k", b"kept"))  # 4
    done = await store.delete_message(room.id, 2, a, 9000, 0)
    assert done.item is not None and done.item.seq == 5
    items = {i.seq: i for i in await store.timeline(room.id, 0, 10)}
    for seq in (2, 3):
        assert items[seq].body is None and items[seq].kind == "msg"
        assert (items[seq].deleted_by, items[seq].deleted_at) == (a, 9000)
        assert items[seq].sender == a and items[seq].cid in ("o", "e")
    assert items[3].edits == 2
    assert items[4].body == b"kept" and items[4].deleted_at is None
    # An edit of a deleted message is refused; a retried cid still returns its tombstone.
    assert await _one(store, _msg(room.id, a, "e2", b"again", edits=2)) == (None, "edit_missing")
    [retry] = await store.append_messages([_msg(room.id, a, "o", b"original")])
    assert retry.duplicate and retry.item is not None and retry.item.body is None


async def test_the_ciphertext_is_gone_from_the_database(store_url: str) -> None:
    """Read below the store: the SQLite files' bytes (database and WAL, while the store
    is still open) or the PostgreSQL table."""
    small, large = os.urandom(200), os.urandom(20_000)  # in-page and overflow pages
    store = await open_store(store_url)
    try:
        a = await user(store)
        room, _ = await store.create_room("group", a, [], None, None, 1)
        await _one(store, _msg(room.id, a, "s", small))
        await _one(store, _msg(room.id, a, "l", large, edits=2))
        kept, _ = await _one(store, _msg(room.id, a, "k", b"kept-" + os.urandom(100)))
        assert (await store.delete_message(room.id, 2, a, 9000, 0)).item is not None
        if store_url.startswith("sqlite:///"):
            path = Path(store_url.removeprefix("sqlite:///"))
            data = b"".join(
                [
                    await asyncio.to_thread(p.read_bytes)
                    for p in path.parent.iterdir()
                    if p.name.startswith(path.name)
                ]
            )
            assert room.id.encode() in data
    finally:
        await store.close()
    if store_url.startswith("sqlite:///"):
        assert small[:32] not in data and large[:32] not in data and large[-32:] not in data
        rows = sqlite3.connect(path).execute(
            "SELECT seq, body FROM timeline WHERE kind = 'msg' ORDER BY seq"
        )
        assert [(seq, body is None) for seq, body in rows] == [(2, True), (3, True), (4, False)]
    else:
        conn = await asyncpg.connect(store_url.replace("postgres://", "postgresql://", 1))
        try:
            rows = await conn.fetch(
                "SELECT seq, body FROM timeline WHERE kind = 'msg' ORDER BY seq"
            )
            hits = await conn.fetchval(
                "SELECT count(*) FROM timeline WHERE position($1::bytea in body) > 0", small[:32]
            )
        finally:
            await conn.close()
        assert [(r["seq"], r["body"] is None) for r in rows] == [(2, True), (3, True), (4, False)]
        assert hits == 0 and kept == 4
