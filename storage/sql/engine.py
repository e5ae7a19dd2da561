"""What the one SQL store needs from a database: a transaction runner and a connection.

The store (:mod:`storage.sql.store` and its domain mixins) writes every transaction
once, as an ``async def tx(c: Tx)`` in PostgreSQL's SQL dialect (``$1`` placeholders,
``= ANY($1::text[])``, ``unnest(...)``, ``FOR UPDATE``, casts), and hands it to
:meth:`Engine.run`. An engine is the only place that knows its database:

- :class:`~storage.sql.postgres.PostgresEngine` runs ``tx`` on a pooled asyncpg
  connection, as is;
- :class:`~storage.sql.sqlite.SqliteEngine` runs it on its writer (or a reader) thread,
  driving the coroutine synchronously, and translates each statement once
  (placeholders, arrays as JSON, row locks dropped: its one writer serialises anyway).

What really differs between the two beyond that (full-text and spatial search, bulk
load, advisory locks, JSON editing) is a method of the engine or of :class:`Tx`, never a
test of the engine's name inside a transaction.

Modes: ``read`` (one or more reads, no transaction needed), ``snapshot`` (several reads
from one snapshot), ``write`` (one statement that writes: its own transaction) and
``transaction`` (several statements, READ COMMITTED on PostgreSQL; SQLite's one writer
makes it serial).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

if TYPE_CHECKING:
    from .search import DirectorySearch

__all__ = ["Engine", "Mode", "Row", "Tx"]

log = logging.getLogger("confrere.storage")
T = TypeVar("T")
Mode = Literal["read", "snapshot", "write", "transaction"]
Row = Sequence[Any]  # asyncpg.Record or a tuple: index, iterate, unpack


class Tx(Protocol):
    """One connection, inside the transaction :meth:`Engine.run` opened."""

    async def execute(self, sql: str, *args: Any) -> int:
        """Run a statement; the number of rows it changed."""

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...

    async def fetch(self, sql: str, *args: Any) -> list[Row]: ...

    async def fetchrow(self, sql: str, *args: Any) -> Row | None: ...

    async def fetchval(self, sql: str, *args: Any) -> Any:
        """The first column of the first row, or ``None`` if there is no row."""

    async def insert_rows(
        self,
        table: str,
        columns: Sequence[tuple[str, str]],
        rows: Sequence[Sequence[Any]],
        tail: str = "",
    ) -> int:
        """Insert ``rows`` into ``table`` in one statement (``columns``: name and
        PostgreSQL type), ``tail`` after it (e.g. ``ON CONFLICT ... DO NOTHING``);
        return how many went in."""

    async def copy(self, table: str, columns: Sequence[str], records: Sequence[Row]) -> None:
        """Insert many rows the fastest way the database has (COPY, executemany)."""

    async def lock(self, key: str) -> None:
        """Serialise the transactions that take the same ``key`` until commit (an
        advisory lock; SQLite's single writer already serialises every write)."""


class Engine(Protocol):
    """A database: its connections, transaction runner and migrations."""

    name: Literal["sqlite", "postgresql"]
    search: DirectorySearch  # the directory's full-text and spatial search
    # Whether other transactions may write while one runs (PostgreSQL's many nodes);
    # SQLite's one writer thread makes writes serial.
    concurrent_writers: bool

    async def run(self, name: str, fn: Callable[[Tx], Awaitable[T]], mode: Mode) -> T:
        """Run ``fn`` as the transaction ``name`` (logged when it fails or is slow).
        Raise :class:`~storage.errors.Conflict` if a constraint refused it,
        :class:`~storage.errors.Unavailable` if the database failed."""

    def blank_json(self, column: str, keys: Sequence[str]) -> str:
        """An SQL expression: ``column`` (JSON text) with the ``keys`` it has set to ""."""

    async def scrub(self) -> None:
        """After a deletion that must leave no trace (a message deleted for everyone):
        push what the engine still keeps of the old rows out of its files, as far as it
        can cheaply. SQLite: checkpoint the WAL into the database (whose freed bytes
        ``secure_delete`` zeroed) and truncate it. PostgreSQL: nothing; dead row
        versions stay in the table's files until autovacuum reclaims them."""

    async def open(self) -> None:
        """Connect and apply pending migrations."""

    async def close(self) -> None:
        """Release every connection; a second call does nothing."""
