"""PostgreSQL only (on SQLite the one writer makes this race impossible): a batch whose
(device, cid) another node stores at the same moment in another room is planned again,
and its room's seqs stay gapless."""

from __future__ import annotations

import asyncio

import asyncpg
from test_store_contract import msg, user

from storage import open_store


async def _wait_for_a_lock_wait(conn: asyncpg.Connection) -> None:
    """Until some other backend of this database waits on a lock (the store's insert
    waiting for the concurrent transaction's row)."""
    for _ in range(2000):
        waiting = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock'"
        )
        if waiting:
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the store's insert never waited for the concurrent transaction")


async def test_a_cid_taken_concurrently_in_another_room_replans_the_batch(
    postgres_database: str,
) -> None:
    store = await open_store(postgres_database)
    other = await asyncpg.connect(postgres_database)
    try:
        a = await user(store)
        device = (await store.create_device(a, "phone", 1)).id
        room, _ = await store.create_room("group", a, [], b"R", None, 1)
        elsewhere, _ = await store.create_room("group", a, [], b"E", None, 1)
        # Another node's transaction stores (device, "c1") in the other room and has
        # not committed yet: this node's lookup of originals cannot see it.
        tx = other.transaction()
        await tx.start()
        await other.execute(
            "INSERT INTO timeline (room_id, seq, kind, ts, sender, device, cid, body)"
            " VALUES ($1, 2, 'msg', 5000, $2, $3, 'c1', '\\x01'::bytea)",
            elsewhere.id,
            a,
            device,
        )
        await other.execute("UPDATE rooms SET last_seq = 2 WHERE id = $1", elsewhere.id)
        batch = [msg(room.id, a, device, "c1"), msg(room.id, a, device, "c2")]
        appending = asyncio.create_task(store.append_messages(batch))
        await _wait_for_a_lock_wait(other)
        await tx.commit()
        first, second = await appending
        assert first.item is None and first.refused == "cid_reused"
        assert second.item is not None and second.item.seq == 2  # no gap left by c1
        assert [(i.seq, i.cid) for i in await store.timeline(room.id, 1, 10)] == [(2, "c2")]
        again = await store.append_messages([msg(room.id, a, device, "c3")])
        assert again[0].item is not None and again[0].item.seq == 3
        assert [(i.seq, i.cid) for i in await store.timeline(elsewhere.id, 1, 10)] == [(2, "c1")]
    finally:
        await other.close()
        await store.close()
