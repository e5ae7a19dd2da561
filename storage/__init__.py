"""Persistence: the :class:`Store` interface and its adapters, chosen by URL scheme.

``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db`` (embedded default);
``postgresql://user:password@host:port/db`` or ``postgres://...`` (several nodes, one
database; pool options in the query string, see :mod:`storage.postgres.store`).
Drivers are imported only when their scheme is used.
"""

from __future__ import annotations

from .base import Store
from .errors import Conflict, NotFound, StorageError, Unavailable
from .group_commit import GroupCommit

__all__ = [
    "Conflict",
    "GroupCommit",
    "NotFound",
    "StorageError",
    "Store",
    "Unavailable",
    "open_store",
]


async def open_store(url: str) -> Store:
    """Open the store named by ``url``, applying pending migrations."""
    scheme, _, rest = url.partition("://")
    if scheme == "sqlite":
        from .sqlite.store import open_sqlite

        # sqlite:///var/x.db -> "var/x.db"; sqlite:////abs/x.db -> "/abs/x.db"
        return await open_sqlite(rest[1:] if rest.startswith("/") else rest)
    if scheme in ("postgresql", "postgres"):
        from .postgres.store import open_postgres

        return await open_postgres(url)
    raise ValueError(
        f"unsupported database URL scheme {scheme!r} (expected sqlite, postgresql or postgres)"
    )
