"""Choosing the engine by URL scheme."""

from __future__ import annotations

from .engine import Engine
from .store import SqlStore

__all__ = ["engine_for", "open_sql"]


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


async def open_sql(url: str) -> SqlStore:
    """Open the store at ``url``, applying pending migrations."""
    engine = engine_for(url)
    await engine.open()
    return SqlStore(engine)
