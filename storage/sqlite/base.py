"""SQLite plumbing shared by every part of :class:`~storage.sqlite.store.SqliteStore`.

One writer thread owns the only write connection (SQLite allows one writer at a time
anyway), so writes never contend for the lock; reads run on a small pool of reader
threads, each with its own connection (WAL lets them read while the writer commits).
``synchronous=FULL``: a commit that returned survives power loss.

Each domain of the store (accounts and rooms, outbox, roles, directory...) is a mixin
subclassing :class:`SqliteBase`; ``SqliteStore`` inherits them all.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from ..errors import Conflict, Unavailable
from ..migrations import migration_files

__all__ = ["SqliteBase"]

log = logging.getLogger("confrere.storage")
T = TypeVar("T")


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


class SqliteBase:
    """Connections, the writer thread and migrations; use
    :func:`~storage.sqlite.store.open_sqlite` to construct a store."""

    def __init__(self, path: str, readers: int = 2) -> None:
        self.path = path
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
        self._readers = ThreadPoolExecutor(readers, thread_name_prefix="sqlite-reader")
        self._local = threading.local()
        self._write_conn: sqlite3.Connection | None = None
        self._all_conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._closed = False

    # -- plumbing

    def _reader_conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self.path)
            conn.execute("PRAGMA query_only=ON")
            self._local.conn = conn
            with self._conns_lock:
                self._all_conns.append(conn)
        return conn

    async def _read(self, name: str, fn: Callable[[sqlite3.Connection], T]) -> T:
        def run() -> T:
            return fn(self._reader_conn())

        return await self._run(self._readers, name, run)

    async def _write(self, name: str, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in one IMMEDIATE transaction on the writer thread."""

        def run() -> T:
            conn = self._write_conn
            assert conn is not None, "store is closed"
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

        return await self._run(self._writer, name, run)

    async def _run(self, pool: ThreadPoolExecutor, name: str, fn: Callable[[], T]) -> T:
        start = time.perf_counter()
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, fn)
        except sqlite3.IntegrityError as exc:
            raise Conflict(f"{name}: {exc}") from exc
        except sqlite3.OperationalError as exc:
            log.error("transaction %s failed: %s", name, exc)
            raise Unavailable(f"{name} failed") from exc
        finally:
            elapsed = (time.perf_counter() - start) * 1000
            if elapsed > 500:
                log.warning("transaction %s took %.0f ms", name, elapsed)

    async def open(self) -> None:
        def setup() -> None:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = _connect(self.path)
            self._write_conn = conn
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            for version, sql in migration_files("sqlite"):
                conn.execute("BEGIN IMMEDIATE")
                # Read under the write lock: another process may be migrating the same
                # file at this moment.
                # Applied is "recorded", not "below the highest recorded": a file merged
                # with a lower number than one already applied still runs.
                row = conn.execute(
                    "SELECT 1 FROM schema_version WHERE version=?", (version,)
                ).fetchone()
                if row is not None:
                    conn.execute("ROLLBACK")
                    continue
                try:
                    for statement in sql.split(";\n"):
                        if statement.strip():
                            conn.execute(statement)
                    conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
                log.info("sqlite migrated to schema version %d", version)

        await asyncio.get_running_loop().run_in_executor(self._writer, setup)

    async def close(self) -> None:
        """Close every connection; a second call does nothing."""
        if self._closed:
            return
        self._closed = True

        def close_writer() -> None:
            if self._write_conn is not None:
                self._write_conn.close()
                self._write_conn = None

        await asyncio.get_running_loop().run_in_executor(self._writer, close_writer)
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        with self._conns_lock:
            for conn in self._all_conns:
                conn.close()
            self._all_conns.clear()

    async def ping(self) -> None:
        await self._read("ping", lambda c: c.execute("SELECT 1").fetchone())
