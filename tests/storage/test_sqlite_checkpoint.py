"""WAL checkpoints on the SQLite engine: never inside a commit, done by the
checkpointer's own thread and connection, and the WAL bounded."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage.sql.engine import Tx
from storage.sql.sqlite import SqliteEngine

_FRAME = 4096 + 24  # a WAL frame: one page and its header


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[SqliteEngine]:
    engine = SqliteEngine(str(tmp_path / "db.sqlite"))
    engine.checkpointer.interval_s = 3600  # the tests drive it, except the last
    await engine.open()

    async def create(c: Tx) -> None:
        await c.execute("CREATE TABLE filler (id INTEGER PRIMARY KEY, body BLOB)")

    await engine.run("create", create, "write")
    yield engine
    await engine.close()


async def _fill(engine: SqliteEngine, commits: int) -> None:
    async def tx(c: Tx) -> None:
        await c.execute("INSERT INTO filler (body) VALUES ($1)", os.urandom(3000))

    for _ in range(commits):
        await engine.run("fill", tx, "write")


def _wal_size(engine: SqliteEngine) -> int:
    return os.path.getsize(engine.path + "-wal")


def _checkpoint(engine: SqliteEngine) -> tuple[int, int]:
    conn = sqlite3.connect(engine.path)
    conn.execute("PRAGMA busy_timeout=5000")
    try:
        return engine.checkpointer.checkpoint(conn)
    finally:
        conn.close()


async def test_commits_never_checkpoint(engine: SqliteEngine) -> None:
    await _fill(engine, 1500)  # past SQLite's automatic checkpoint (1,000 pages)
    # No commit copied the WAL back and started it over: it holds every frame written.
    assert _wal_size(engine) > 1200 * _FRAME
    frames, copied = _checkpoint(engine)
    assert frames >= 1500 and copied == frames


async def test_the_wal_starts_over_past_its_bound(engine: SqliteEngine) -> None:
    engine.checkpointer.restart_frames = 200
    await _fill(engine, 300)
    _checkpoint(engine)
    assert engine.checkpointer.restarts == 1
    await _fill(engine, 5)
    frames, _ = _checkpoint(engine)
    assert frames < 50  # the commits since wrote from the WAL's start again

    async def count(c: Tx) -> int:
        return int(await c.fetchval("SELECT count(*) FROM filler"))

    assert await engine.run("count", count, "read") == 305


async def test_the_thread_copies_the_wal(tmp_path: Path) -> None:
    engine = SqliteEngine(str(tmp_path / "db.sqlite"))
    engine.checkpointer.interval_s = 0.01
    await engine.open()
    try:
        seen = engine.checkpointer.checkpoints
        for _ in range(1000):  # wait for a round that started after the migrations
            if engine.checkpointer.checkpoints >= seen + 2:
                break
            await asyncio.sleep(0.01)
        frames, copied = _checkpoint(engine)
        assert frames > 0 and copied == frames  # nothing left for it: the thread copied
    finally:
        await engine.close()


async def test_scrub_waits_for_a_checkpoint_in_progress_then_empties_the_wal(
    engine: SqliteEngine,
) -> None:
    # SQLite answers a checkpoint started while another runs "busy", copying nothing:
    # the scrub after a deletion would leave the deleted ciphertext in the WAL.
    await _fill(engine, 50)
    assert _wal_size(engine) > 0
    with engine.checkpointer.lock:  # the checkpointer's thread, mid-round
        scrub = asyncio.create_task(engine.scrub())
        done, _ = await asyncio.wait({scrub}, timeout=0.2)
        assert not done
    await scrub
    assert _wal_size(engine) == 0
