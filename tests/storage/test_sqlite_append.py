"""The statements a batch of sends costs on the SQLite writer: the (device, cid) lookup
is made only when the batch needs it (a retry, or a message the plan refused)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage import open_store
from storage.sql.store import SqlStore
from storage.types import NewMessage, NewUser


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    opened = await open_store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    assert isinstance(opened, SqlStore)
    try:
        yield opened
    finally:
        await opened.close()


async def _user(store: SqlStore, n: int) -> str:
    new = NewUser(f"u{n}@example.org", "h", "Jeanne", f"Nom{n}", "69001", "Lyon", "x", "salarie")
    return (await store.create_user(new, now=1)).id


def _traced(store: SqlStore) -> list[str]:
    """Every statement the writer's connection runs from now on."""
    statements: list[str] = []
    conn = store.db._write_conn  # type: ignore[attr-defined]
    conn.set_trace_callback(statements.append)
    return statements


def _cid_lookups(statements: list[str]) -> int:
    return sum(1 for s in statements if s.startswith("SELECT t.room_id") and "cid" in s)


async def test_a_batch_of_new_messages_does_not_look_up_cids(store: SqlStore) -> None:
    a, b = await _user(store, 1), await _user(store, 2)
    room, _ = await store.create_room("group", a, [b], b"G", None, 1)
    statements = _traced(store)
    out = await store.append_messages(
        [NewMessage(room.id, a, "da", f"c{i}", b"x", 5) for i in range(3)]
    )
    assert [r.item.seq for r in out if r.item] == [2, 3, 4]
    assert _cid_lookups(statements) == 0
    assert [s.split(" ", 1)[0] for s in statements] == [
        "BEGIN",
        "SELECT",  # the rooms
        "SELECT",  # the senders' memberships
        *["INSERT"] * 3,  # one executemany
        "UPDATE",  # last_seq
        "COMMIT",
    ]


@pytest.mark.parametrize("retried_first", [True, False])
async def test_a_retry_or_a_refusal_looks_the_cids_up_once(
    store: SqlStore, retried_first: bool
) -> None:
    a, b, outsider = await _user(store, 1), await _user(store, 2), await _user(store, 3)
    room, _ = await store.create_room("group", a, [b], b"G", None, 1)
    await store.append_messages([NewMessage(room.id, a, "da", "c1", b"x", 5)])
    statements = _traced(store)
    odd = (
        NewMessage(room.id, a, "da", "c1", b"x", 6)  # a retry: found by the unique index
        if retried_first
        else NewMessage(room.id, outsider, "do", "c9", b"x", 6)  # refused: looked up first
    )
    out = await store.append_messages([odd, NewMessage(room.id, b, "db", "c2", b"x", 6)])
    assert (out[0].duplicate, out[0].refused) == (
        (True, None) if retried_first else (False, "not_member")
    )
    assert out[1].item is not None and out[1].item.seq == 3
    assert _cid_lookups(statements) == 1
