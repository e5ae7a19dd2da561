"""Choosing the engine by URL scheme, and the store classes of each engine."""

from __future__ import annotations

from ..postgres.directory import PostgresDirectory
from ..sqlite.directory import SqliteDirectory
from .engine import Engine
from .store import SqlStore

__all__ = ["PostgresStore", "SqliteStore", "engine_for", "open_sql"]


class SqliteStore(SqliteDirectory, SqlStore):
    """The store on SQLite (the directory's search is still engine-specific)."""


class PostgresStore(PostgresDirectory, SqlStore):
    """The store on PostgreSQL (the directory's search is still engine-specific)."""


def engine_for(url: str) -> Engine:
    """The engine of ``url`` (not opened yet)."""
    scheme, _, rest = url.partition("://")
    if scheme == "sqlite":
        from .sqlite import SqliteEngine

        # sqlite:///var/x.db -> "var/x.db"; sqlite:////abs/x.db -> "/abs/x.db"
        return SqliteEngine(rest[1:] if rest.startswith("/") else rest)
    if scheme in ("postgresql", "postgres"):
        from .postgres import PostgresEngine, split_url

        dsn, options = split_url(url)
        return PostgresEngine(dsn, options)
    raise ValueError(
        f"unsupported database URL scheme {scheme!r} (expected sqlite, postgresql or postgres)"
    )


async def open_sql(url: str) -> SqliteStore | PostgresStore:
    """Open the store at ``url``, applying pending migrations."""
    engine = engine_for(url)
    await engine.open()
    return SqliteStore(engine) if engine.name == "sqlite" else PostgresStore(engine)
