"""The SQLite engine: the embedded default.

One writer thread owns the only write connection (SQLite allows one writer at a time
anyway), so writes never contend for the lock; reads run on a small pool of reader
threads, each with its own connection (WAL lets them read while the writer commits).
``synchronous=FULL``: a commit that returned survives power loss. WAL checkpoints run
on a thread and connection of their own (:class:`Checkpointer`), never inside a
commit. Every write
transaction is ``BEGIN IMMEDIATE``: transactions are serial, so the row locks the
store's SQL takes for PostgreSQL's many writers (``FOR UPDATE``...) are dropped here.

The store's transactions are coroutines; on this engine their database calls never
suspend, so a transaction is driven to its end synchronously on the thread that owns
the connection (no event-loop hop per statement).

Each statement is translated once (and cached) from the store's PostgreSQL dialect:

- ``$n`` -> ``?n``; casts (``::text``, ``::bigint[]``) dropped;
- ``x = ANY($n)`` -> ``x IN (SELECT value FROM json_each(?n))``, the list sent as JSON;
- ``unnest($a, ..., $b) [WITH ORDINALITY] AS t (c1, ...)`` -> a ``json_each`` over the
  arrays zipped into one JSON list of rows (so no ``bytea`` arrays: use ``copy``);
- ``FOR [NO KEY] UPDATE [OF t] [SKIP LOCKED]`` dropped; ``GREATEST``/``LEAST`` ->
  ``max``/``min``.

Anything else must be valid in both dialects.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from ..errors import BadValue, ConstraintViolated, Unavailable
from ..migrations import migration_files
from .engine import Mode, Row, Tx
from .search import DirectorySearch, SqliteSearch

__all__ = ["SqliteEngine", "SqliteTx", "drive", "translate"]

log = logging.getLogger("confrere.storage")
T = TypeVar("T")
_SLOW_MS = 500

_UNNEST = re.compile(
    r"unnest\(\s*((?:\$\d+(?:::\w+\[\])?\s*,\s*)*\$\d+(?:::\w+\[\])?)\s*\)"
    r"(\s+WITH\s+ORDINALITY)?\s+AS\s+(\w+)\s*\(([^)]*)\)",
    re.IGNORECASE,
)
_ANY = re.compile(r"=\s*ANY\s*\(\s*\$(\d+)(?:::\w+\[\])?\s*\)", re.IGNORECASE)
_PARAM = re.compile(r"\$(\d+)")
_CAST = re.compile(r"::\w+(?:\[\])?")
_LOCKING = re.compile(r"\s+FOR\s+(?:NO\s+KEY\s+)?UPDATE(?:\s+OF\s+\w+)?(?:\s+SKIP\s+LOCKED)?", re.I)
_FUNCS = ((re.compile(r"\bGREATEST\(", re.I), "max("), (re.compile(r"\bLEAST\(", re.I), "min("))


@dataclass(frozen=True, slots=True)
class _Statement:
    sql: str
    params: int  # how many the statement binds (the highest ?n)
    lists: tuple[int, ...]  # 0-based args sent as JSON arrays
    zips: tuple[tuple[int, int], ...]  # (first, last) 0-based: arrays zipped into first


_cache: dict[str, _Statement] = {}


def translate(sql: str) -> _Statement:
    """The SQLite form of one of the store's statements (cached)."""
    found = _cache.get(sql)
    if found is not None:
        return found
    zips: list[tuple[int, int]] = []

    def unnest(m: re.Match[str]) -> str:
        idx = [int(p) for p in re.findall(r"\$(\d+)", m.group(1))]
        if idx != list(range(idx[0], idx[0] + len(idx))):
            raise ValueError(f"unnest of non-consecutive parameters: {m.group(0)}")
        cols = [c.strip() for c in m.group(4).split(",")]
        ordinality = m.group(2) is not None
        named = cols[:-1] if ordinality else cols
        if len(named) != len(idx):
            raise ValueError(f"unnest columns do not match its arrays: {m.group(0)}")
        zips.append((idx[0] - 1, idx[-1] - 1))
        select = [f"value->>{i} AS {c}" for i, c in enumerate(named)]
        if ordinality:
            select.append(f"key + 1 AS {cols[-1]}")
        return f"(SELECT {', '.join(select)} FROM json_each(${idx[0]})) AS {m.group(3)}"

    out = _UNNEST.sub(unnest, sql)
    lists = tuple(int(n) - 1 for n in _ANY.findall(out))
    out = _ANY.sub(lambda m: f" IN (SELECT value FROM json_each(${m.group(1)}))", out)
    if re.search(r"\bANY\s*\(|\bunnest\(", out, re.I):
        raise ValueError(f"no SQLite form for: {sql}")
    out = _CAST.sub("", _LOCKING.sub("", out))
    for pattern, repl in _FUNCS:
        out = pattern.sub(repl, out)
    params = max((int(n) for n in _PARAM.findall(out)), default=0)
    out = _PARAM.sub(r"?\1", out)
    statement = _Statement(out, params, lists, tuple(zips))
    _cache[sql] = statement
    return statement


_json = json.JSONEncoder(separators=(",", ":")).encode


def _texts_ok(values: Iterable[Any]) -> None:
    """Refuse what PostgreSQL refuses and SQLite would store: a NUL in a text."""
    for value in values:
        if type(value) is str and "\x00" in value:
            raise BadValue("a text holds a NUL character")


def _bind(st: _Statement, args: Sequence[Any]) -> Sequence[Any]:
    _texts_ok(args)
    if not st.zips and not st.lists and len(args) == st.params:
        return args
    bound = list(args)
    for first, last in st.zips:
        bound[first] = _json(list(zip(*bound[first : last + 1], strict=True)))
        for i in range(first + 1, last + 1):
            bound[i] = None
    for i in st.lists:
        bound[i] = _json(list(bound[i]))
    if len(bound) != st.params:
        if len(bound) < st.params:
            raise ValueError(f"{st.params} parameters needed, {len(bound)} given: {st.sql}")
        del bound[st.params :]
    return bound


class SqliteTx:
    """:class:`~storage.sql.engine.Tx` on a sqlite3 connection; calls never suspend."""

    __slots__ = ("conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def _cursor(self, sql: str, args: Sequence[Any]) -> sqlite3.Cursor:
        st = translate(sql)
        return self.conn.execute(st.sql, _bind(st, args))

    async def execute(self, sql: str, *args: Any) -> int:
        return self._cursor(sql, args).rowcount

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        st = translate(sql)
        self.conn.executemany(st.sql, (_bind(st, r) for r in rows))

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return self._cursor(sql, args).fetchall()

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        row: Row | None = self._cursor(sql, args).fetchone()
        return row

    async def fetchval(self, sql: str, *args: Any) -> Any:
        row = self._cursor(sql, args).fetchone()
        return None if row is None else row[0]

    async def insert_rows(
        self,
        table: str,
        columns: Sequence[tuple[str, str]],
        rows: Sequence[Sequence[Any]],
        tail: str = "",
    ) -> int:
        if not rows:
            return 0
        for row in rows:
            _texts_ok(row)
        marks = ", ".join("?" * len(columns))
        names = ", ".join(n for n, _ in columns)
        cur = self.conn.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks}) {tail}", rows)
        return cur.rowcount

    async def copy(self, table: str, columns: Sequence[str], records: Sequence[Row]) -> None:
        for row in records:
            _texts_ok(row)
        marks = ", ".join("?" * len(columns))
        self.conn.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", records
        )

    async def lock(self, key: str) -> None:
        """Nothing to do: the one writer holds the database's write lock."""


def drive(coro: Coroutine[Any, Any, T]) -> T:
    """Run a transaction coroutine whose awaits never suspend (they are all SqliteTx's)."""
    try:
        coro.send(None)
    except StopIteration as stop:
        result: T = stop.value
        return result
    coro.close()
    raise RuntimeError("a SQLite transaction awaited something other than its connection")


def _settle(outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for future, result, exc in outcomes:
        if future.done():  # its awaiter was cancelled
            continue
        if exc is None:
            future.set_result(result)
        else:
            future.set_exception(exc)


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    # Deleted and replaced content is overwritten with zeros in the file (a message
    # deleted for everyone leaves no ciphertext behind once its page is checkpointed).
    conn.execute("PRAGMA secure_delete=ON")
    return conn


class Checkpointer:
    """Copies the WAL into the database file from its own thread and connection.

    SQLite's automatic checkpoint runs inside the commit that takes the WAL past 1,000
    pages, so that commit, and every send of its batch and of the batches queued
    behind it, waited for the copy and the database file's fsync: 80 to 250 ms on this
    project's machines, which is what set the p99 of the send path. Here a PASSIVE
    checkpoint runs every ``interval_s`` (it never blocks the writer). Under a steady
    stream of commits a passive checkpoint rarely finds the WAL idle, which is what lets
    SQLite start the WAL over; past ``restart_frames`` a RESTART checkpoint waits for
    such a moment (holding the writer back while it copies what the last passive one
    left), so the WAL stays bounded."""

    def __init__(self, path: str, interval_s: float = 0.2, restart_frames: int = 16_384) -> None:
        self.path = path
        self.interval_s = interval_s
        self.restart_frames = restart_frames
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Held by each checkpoint, ours and :meth:`SqliteEngine.scrub`'s: SQLite runs one
        # at a time and answers a second one "busy" at once, without copying anything.
        self.lock = threading.Lock()
        self.checkpoints = 0
        self.restarts = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        conn = _connect(self.path)
        try:
            while not self._stop.wait(self.interval_s):
                self.checkpoint(conn)
        finally:
            conn.close()

    def checkpoint(self, conn: sqlite3.Connection) -> tuple[int, int]:
        """One round; (frames in the WAL, frames of them copied to the database)."""
        try:
            with self.lock:
                _, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                self.checkpoints += 1
                if frames >= self.restart_frames:
                    _, frames, copied = conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
                    self.restarts += 1
        except sqlite3.Error as exc:  # the next round tries again
            log.warning("WAL checkpoint failed: %s", exc)
            return -1, -1
        return frames, copied

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None


class SqliteEngine:
    """Connections, the writer thread, the checkpointer and migrations."""

    name: Literal["sqlite", "postgresql"] = "sqlite"
    search: DirectorySearch = SqliteSearch()
    concurrent_writers = False

    def __init__(self, path: str, readers: int = 2) -> None:
        self.path = path
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
        self._readers = ThreadPoolExecutor(readers, thread_name_prefix="sqlite-reader")
        self._reader_count = readers
        self._reads: list[tuple[Callable[[], Any], asyncio.Future[Any]]] = []
        self._reads_loop: asyncio.AbstractEventLoop | None = None
        self._local = threading.local()
        self._write_conn: sqlite3.Connection | None = None
        self._all_conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._closed = False
        self.checkpointer = Checkpointer(path)

    def _reader_conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self.path)
            conn.execute("PRAGMA query_only=ON")
            self._local.conn = conn
            with self._conns_lock:
                self._all_conns.append(conn)
        return conn

    async def run(self, name: str, fn: Callable[[Tx], Awaitable[T]], mode: Mode) -> T:
        def call(conn: sqlite3.Connection) -> T:
            return drive(fn(SqliteTx(conn)))  # type: ignore[arg-type]

        if mode == "read":
            return await self._read(name, lambda: call(self._reader_conn()))
        if mode == "snapshot":
            return await self._read(name, lambda: self._in_tx(self._reader_conn(), "BEGIN", call))
        return await self._run(
            self._writer, name, lambda: self._in_tx(self._writing(), "BEGIN IMMEDIATE", call)
        )

    def _writing(self) -> sqlite3.Connection:
        conn = self._write_conn
        if conn is None:
            raise Unavailable("the store is closed")
        return conn

    @staticmethod
    def _in_tx(conn: sqlite3.Connection, begin: str, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn.execute(begin)
        try:
            result = fn(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    async def _read(self, name: str, fn: Callable[[], T]) -> T:
        """Run ``fn`` on a reader thread, with the other reads asked for in the same
        turn of the event loop: one hand-off per turn rather than one per read. A
        hand-off (waking a thread, then the loop) cost more than a hello's reads
        themselves, and during a connection storm each turn brings many hellos."""
        loop = asyncio.get_running_loop()
        if self._reads and self._reads_loop is not loop:  # another loop's batch is open
            return await self._run(self._readers, name, fn)
        future: asyncio.Future[T] = loop.create_future()
        if not self._reads:
            self._reads_loop = loop
            loop.call_soon(self._submit_reads)
        self._reads.append((fn, future))
        return await self._run(self._readers, name, future)

    def _submit_reads(self) -> None:
        reads, self._reads = self._reads, []
        loop = self._reads_loop
        assert loop is not None
        # Split among the readers, so that one slow read does not hold up all the others.
        size = -(-len(reads) // self._reader_count)
        for i in range(0, len(reads), size):
            chunk = reads[i : i + size]
            try:
                self._readers.submit(self._run_reads, loop, chunk)
            except RuntimeError:  # closed
                for _, future in chunk:
                    if not future.done():
                        future.set_exception(Unavailable("the store is closed"))

    @staticmethod
    def _run_reads(
        loop: asyncio.AbstractEventLoop,
        reads: list[tuple[Callable[[], Any], asyncio.Future[Any]]],
    ) -> None:
        """On a reader thread: run each read, then hand all their outcomes back at once."""
        outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        for fn, future in reads:
            try:
                outcomes.append((future, fn(), None))
            except BaseException as exc:
                outcomes.append((future, None, exc))
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
            loop.call_soon_threadsafe(_settle, outcomes)

    async def _run(
        self, pool: ThreadPoolExecutor, name: str, fn: Callable[[], T] | asyncio.Future[T]
    ) -> T:
        """Await ``fn`` run on ``pool`` (or ``fn``, a future of :meth:`_read`'s), with
        SQLite's errors translated."""
        start = time.perf_counter()
        try:
            if isinstance(fn, asyncio.Future):
                return await fn
            return await asyncio.get_running_loop().run_in_executor(pool, fn)
        except sqlite3.IntegrityError as exc:
            raise ConstraintViolated(f"{name}: {exc}") from exc
        except OverflowError as exc:  # an integer beyond 64 bits, as asyncpg refuses it
            raise BadValue(f"{name}: {exc}") from exc
        except sqlite3.OperationalError as exc:
            log.error("transaction %s failed: %s", name, exc)
            raise Unavailable(f"{name} failed") from exc
        finally:
            elapsed = (time.perf_counter() - start) * 1000
            if elapsed > _SLOW_MS:
                log.warning("transaction %s took %.0f ms", name, elapsed)

    def blank_json(self, column: str, keys: Sequence[str]) -> str:
        # json_replace changes only keys that are there.
        pairs = ", ".join(f"'$.{k}', ''" for k in keys)
        return f"json_replace({column}, {pairs})"

    async def open(self) -> None:
        def setup() -> None:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = _connect(self.path)
            conn.execute("PRAGMA wal_autocheckpoint=0")  # the checkpointer's job
            # The WAL file keeps its size when it starts over; past this it is cut back.
            conn.execute(f"PRAGMA journal_size_limit={64 << 20}")
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
        self.checkpointer.start()

    async def scrub(self) -> None:
        # Best effort: a reader inside an older snapshot keeps the checkpoint partial
        # (SQLite reports it, raises nothing); the next one completes it. The
        # checkpointer's lock keeps its passive rounds from making this one "busy".
        def truncate() -> None:
            with self.checkpointer.lock:
                self._writing().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

        await self._run(self._writer, "scrub", truncate)

    async def close(self) -> None:
        """Close every connection; a second call does nothing."""
        if self._closed:
            return
        self._closed = True
        await asyncio.to_thread(self.checkpointer.stop)

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


def bulk_insert(
    path: str,
    tables: Sequence[tuple[str, Sequence[str], Sequence[Row]]],
    chunk: int,
    progress: Callable[[str, int], None] | None = None,
) -> None:
    """Insert whole tables in one transaction on a connection of its own, with
    ``synchronous=OFF``: for a fresh load-test database only, where a crash mid-load
    loses the whole load, which is then simply rerun."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("BEGIN IMMEDIATE")
        try:
            for table, cols, data in tables:
                sql = (
                    f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
                )
                for start in range(0, len(data), chunk):
                    conn.executemany(sql, data[start : start + chunk])
                    if progress is not None:
                        progress(table, min(len(data), start + chunk))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
