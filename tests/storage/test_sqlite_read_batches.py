"""Reads on the SQLite engine: those asked for in one turn of the event loop reach the
reader threads in one hand-off per reader, and each gets its own answer or error."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from storage.errors import Unavailable
from storage.sql.engine import Tx
from storage.sql.sqlite import SqliteEngine


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[SqliteEngine]:
    engine = SqliteEngine(str(tmp_path / "db.sqlite"), readers=2)
    await engine.open()

    async def create(c: Tx) -> None:
        await c.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
        for i in range(10):
            await c.execute("INSERT INTO t (id, v) VALUES ($1, $2)", i, f"v{i}")

    await engine.run("create", create, "write")
    yield engine
    await engine.close()


def _count_hand_offs(engine: SqliteEngine) -> list[int]:
    submitted: list[int] = []
    submit = engine._readers.submit

    def counting(fn: Any, *args: Any) -> Any:
        submitted.append(len(args[-1]) if args else 1)
        return submit(fn, *args)

    engine._readers.submit = counting  # type: ignore[method-assign]
    return submitted


def _value(i: int) -> Any:
    async def q(c: Tx) -> str | None:
        return await c.fetchval("SELECT v FROM t WHERE id = $1", i)  # type: ignore[no-any-return]

    return q


async def test_reads_of_one_turn_share_a_hand_off_per_reader(engine: SqliteEngine) -> None:
    submitted = _count_hand_offs(engine)
    values = await asyncio.gather(*(engine.run("v", _value(i), "read") for i in range(10)))
    assert values == [f"v{i}" for i in range(10)]
    assert submitted == [5, 5]  # two readers, half each
    assert await engine.run("v", _value(3), "snapshot") == "v3"
    assert submitted == [5, 5, 1]


async def test_each_read_gets_its_own_error(engine: SqliteEngine) -> None:
    async def broken(c: Tx) -> Any:
        return await c.fetchval("SELECT nothing FROM nowhere")

    ok, failed, ok2 = await asyncio.gather(
        engine.run("ok", _value(1), "read"),
        engine.run("broken", broken, "read"),
        engine.run("ok", _value(2), "read"),
        return_exceptions=True,
    )
    assert (ok, ok2) == ("v1", "v2")
    assert isinstance(failed, Unavailable)


async def test_a_cancelled_reader_leaves_the_others_their_answers(engine: SqliteEngine) -> None:
    first = asyncio.ensure_future(engine.run("v", _value(1), "read"))
    second = asyncio.ensure_future(engine.run("v", _value(2), "read"))
    await asyncio.sleep(0)  # both asked for
    first.cancel()
    assert await second == "v2"
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_reads_after_close_are_refused(tmp_path: Path) -> None:
    engine = SqliteEngine(str(tmp_path / "db.sqlite"))
    await engine.open()
    await engine.close()
    with pytest.raises(Unavailable):
        await engine.run("v", _value(1), "read")
