"""The PostgreSQL engine (asyncpg): one database, many nodes.

- Every transaction runs on a pooled connection: ``write`` and ``read`` as one statement
  (or a few reads) without BEGIN/COMMIT round trips, ``transaction`` as an explicit READ
  COMMITTED transaction, ``snapshot`` as one REPEATABLE READ read-only snapshot.
- Deadlocks and serialisation failures are retried (3 attempts in all); integrity
  violations raise :class:`~storage.errors.Conflict`; a server that cannot be reached,
  is shutting down or out of resources raises :class:`~storage.errors.Unavailable`.
- A transaction that returned has committed; durability is the server's
  ``synchronous_commit`` (``on`` by default: flushed to the WAL before it returns).
- Migrations (``storage/migrations/postgres``) run at open, each in its own transaction
  under a transaction-level advisory lock, so several nodes may start at once.

URL: ``postgresql://user:password@host:port/db`` (or ``postgres://``) plus, optionally,
``pool_min``, ``pool_max``, ``command_timeout`` and ``connect_timeout`` (seconds) in the
query string; every other query parameter goes to asyncpg as is.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
from asyncpg import exceptions as pgerr

from ..errors import BadValue, ConstraintViolated, Unavailable
from ..migrations import migration_files
from .engine import Mode, Row, Tx
from .search import DirectorySearch, PostgresSearch

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

__all__ = ["PostgresEngine", "PostgresOptions", "PostgresTx", "split_url"]

log = logging.getLogger("confrere.storage")
T = TypeVar("T")
Conn: TypeAlias = "PoolConnectionProxy[asyncpg.Record] | asyncpg.Connection[asyncpg.Record]"

_ATTEMPTS = 3  # for deadlocks and serialisation failures
_SLOW_MS = 500
# pg_advisory_xact_lock key of the migrators ("confrere" in ASCII, as a bigint).
_MIGRATION_LOCK = 0x636F6E6672657265

# The server or the network failed, not the request: callers may retry later.
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,  # includes TimeoutError (pool acquire, command_timeout)
    pgerr.InterfaceError,  # connection closed, pool closed
    pgerr.PostgresConnectionError,  # SQLSTATE class 08
    pgerr.InsufficientResourcesError,  # 53: disk full, out of memory, too many clients
    pgerr.OperatorInterventionError,  # 57: shutdown, cannot connect now, query canceled
    pgerr.PostgresSystemError,  # 58: I/O error
)

_SQL_CREATE_SCHEMA_VERSION = (
    "CREATE TABLE IF NOT EXISTS schema_version ("
    " version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
)
_SQL_MIGRATION_LOCK = "SELECT pg_advisory_xact_lock($1)"
_SQL_VERSION_APPLIED = "SELECT EXISTS (SELECT 1 FROM schema_version WHERE version = $1)"
_SQL_RECORD_VERSION = "INSERT INTO schema_version (version) VALUES ($1)"


def _count(status: str) -> int:
    """Rows affected, from a command tag such as ``DELETE 3`` or ``UPDATE 0``."""
    tail = status.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 0


async def _keep_session(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    """Pool reset hook: nothing to undo. The store never changes session settings,
    LISTENs or takes session-level locks, and asyncpg itself rolls back a transaction
    left open; skipping the default ``RESET ALL ...`` saves a round trip per method."""


@dataclass(frozen=True, slots=True)
class PostgresOptions:
    """Pool sizes and timeouts (seconds); set from the URL query or by the caller."""

    pool_min: int = 2
    pool_max: int = 10
    command_timeout: float = 30.0
    connect_timeout: float = 10.0

    def __post_init__(self) -> None:
        if not 0 <= self.pool_min <= self.pool_max or self.pool_max < 1:
            raise ValueError(f"need 0 <= pool_min <= pool_max >= 1, got {self}")
        if self.command_timeout <= 0 or self.connect_timeout <= 0:
            raise ValueError(f"timeouts must be positive, got {self}")


def split_url(url: str) -> tuple[str, PostgresOptions]:
    """Separate our options from the URL: ``(dsn for asyncpg, options)``."""
    parts = urlsplit(url)
    kept: list[tuple[str, str]] = []
    ours: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key in PostgresOptions.__dataclass_fields__:
            ours[key] = value
        else:
            kept.append((key, value))
    if not ours:
        return url, PostgresOptions()
    defaults = PostgresOptions()
    try:
        options = PostgresOptions(
            pool_min=int(ours.get("pool_min", defaults.pool_min)),
            pool_max=int(ours.get("pool_max", defaults.pool_max)),
            command_timeout=float(ours.get("command_timeout", defaults.command_timeout)),
            connect_timeout=float(ours.get("connect_timeout", defaults.connect_timeout)),
        )
    except ValueError as exc:
        raise ValueError(f"database URL options {ours}: {exc}") from None
    return urlunsplit(parts._replace(query=urlencode(kept))), options


class PostgresTx:
    """:class:`~storage.sql.engine.Tx` on an asyncpg connection: SQL goes as written."""

    __slots__ = ("conn",)

    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    async def execute(self, sql: str, *args: Any) -> int:
        return _count(await self.conn.execute(sql, *args))

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        await self.conn.executemany(sql, rows)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return await self.conn.fetch(sql, *args)  # type: ignore[return-value]

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        return await self.conn.fetchrow(sql, *args)  # type: ignore[return-value]

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await self.conn.fetchval(sql, *args)

    async def insert_rows(
        self,
        table: str,
        columns: Sequence[tuple[str, str]],
        rows: Sequence[Sequence[Any]],
        tail: str = "",
    ) -> int:
        if not rows:
            return 0
        arrays = ", ".join(f"${i}::{t}[]" for i, (_, t) in enumerate(columns, 1))
        names = ", ".join(n for n, _ in columns)
        sql = f"INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays}) {tail}"
        return await self.execute(sql, *(list(col) for col in zip(*rows, strict=True)))

    async def copy(self, table: str, columns: Sequence[str], records: Sequence[Row]) -> None:
        await self.conn.copy_records_to_table(table, records=records, columns=list(columns))

    async def lock(self, key: str) -> None:
        await self.conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", key)


class PostgresEngine:
    """The pool and the transaction runner."""

    name: Literal["sqlite", "postgresql"] = "postgresql"
    search: DirectorySearch = PostgresSearch()
    concurrent_writers = True

    def __init__(self, dsn: str, options: PostgresOptions | None = None) -> None:
        self.dsn = dsn
        self.options = options or PostgresOptions()
        self._pool: asyncpg.Pool[asyncpg.Record] | None = None
        self._closed = False

    async def run(self, name: str, fn: Callable[[Tx], Awaitable[T]], mode: Mode) -> T:
        pool = self._pool
        if pool is None:
            raise Unavailable(f"{name}: the store is closed")
        start = time.perf_counter()
        attempt = 1
        try:
            while True:
                try:
                    async with pool.acquire(timeout=self.options.command_timeout) as conn:
                        tx = PostgresTx(conn)
                        if mode == "read" or mode == "write":
                            return await fn(tx)
                        if mode == "snapshot":
                            async with conn.transaction(isolation="repeatable_read", readonly=True):
                                return await fn(tx)
                        async with conn.transaction():
                            return await fn(tx)
                except pgerr.TransactionRollbackError as exc:
                    if attempt >= _ATTEMPTS:
                        log.error("transaction %s failed %d times: %s", name, attempt, exc)
                        raise Unavailable(f"{name} failed") from exc
                    log.warning("transaction %s rolled back (%s), retrying", name, exc)
                    attempt += 1
        except (pgerr.DataError, asyncpg.exceptions._base.DataError) as exc:
            # The server's class 22 (a NUL in a text...) or asyncpg's own (an integer
            # beyond 64 bits): before _UNAVAILABLE, whose InterfaceError the latter is.
            raise BadValue(f"{name}: {exc}") from exc
        except (pgerr.IntegrityConstraintViolationError, pgerr.RaiseError) as exc:
            # RaiseError: a trigger's refusal (audit_log is append-only), as SQLite's
            # RAISE(ABORT) is a constraint failure there.
            raise ConstraintViolated(f"{name}: {exc}") from exc
        except _UNAVAILABLE as exc:
            log.error("transaction %s failed: %s: %s", name, type(exc).__name__, exc)
            raise Unavailable(f"{name} failed") from exc
        finally:
            elapsed = (time.perf_counter() - start) * 1000
            if elapsed > _SLOW_MS:
                log.warning("transaction %s took %.0f ms", name, elapsed)

    def blank_json(self, column: str, keys: Sequence[str]) -> str:
        # jsonb_set(..., false) changes only keys that are there.
        expr = f"{column}::jsonb"
        for key in keys:
            expr = f"jsonb_set({expr}, '{{{key}}}', '\"\"', false)"
        return f"({expr})::text"

    async def open(self) -> None:
        """Create the pool and apply pending migrations."""
        opts = self.options
        try:
            self._pool = await asyncpg.create_pool(
                self.dsn,
                min_size=opts.pool_min,
                max_size=opts.pool_max,
                command_timeout=opts.command_timeout,
                timeout=opts.connect_timeout,
                server_settings={"application_name": "confrere"},
                reset=_keep_session,
            )
        except pgerr.ClientConfigurationError:
            raise
        except _UNAVAILABLE as exc:
            log.error("cannot open the postgres pool: %s: %s", type(exc).__name__, exc)
            raise Unavailable("cannot reach the database") from exc
        try:
            await self.run("migrate", lambda tx: self._migrate(tx), "write")
        except BaseException:
            await self.close()
            raise

    @staticmethod
    async def _migrate(tx: Tx) -> None:
        assert isinstance(tx, PostgresTx)
        c = tx.conn
        for version, sql in migration_files("postgres"):
            # Each file in its own transaction; the advisory lock makes concurrent
            # migrators (nodes starting together) take turns, and the version is read
            # again under it, so each file is applied once.
            async with c.transaction():
                await c.execute(_SQL_MIGRATION_LOCK, _MIGRATION_LOCK)
                await c.execute(_SQL_CREATE_SCHEMA_VERSION)
                # Applied is "recorded", not "below the highest recorded": a file merged
                # with a lower number than one already applied still runs.
                if await c.fetchval(_SQL_VERSION_APPLIED, version):
                    continue
                await c.execute(sql)
                await c.execute(_SQL_RECORD_VERSION, version)
            log.info("postgres migrated to schema version %d", version)

    async def scrub(self) -> None:
        """Nothing: autovacuum reclaims dead row versions (a VACUUM per deletion would
        cost far more than it is worth on a large timeline)."""

    async def close(self) -> None:
        """Close the pool (waiting up to ``command_timeout`` for connections in use);
        a second call does nothing."""
        if self._closed:
            return
        self._closed = True
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            await asyncio.wait_for(pool.close(), self.options.command_timeout)
        except TimeoutError:
            log.warning("postgres pool did not close in time: terminating it")
            pool.terminate()


async def bulk_copy(
    url: str,
    tables: Sequence[tuple[str, Sequence[str], Sequence[Row]]],
    chunk: int,
    progress: Callable[[str, int], None] | None = None,
) -> None:
    """COPY whole tables in one transaction on a connection of its own."""
    dsn, _ = split_url(url)
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            for table, columns, data in tables:
                for start in range(0, len(data), chunk):
                    await conn.copy_records_to_table(
                        table, records=data[start : start + chunk], columns=list(columns)
                    )
                    if progress is not None:
                        progress(table, min(len(data), start + chunk))
    finally:
        await conn.close()
