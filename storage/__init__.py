"""Persistence: the :class:`Store` interface and its adapters, chosen by URL scheme.

``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db`` (embedded default);
``postgresql://user:password@host:port/db`` or ``postgres://...`` (several nodes, one
database; pool options in the query string, see :mod:`storage.sql.postgres`).
One store (:mod:`storage.sql`), two engines; drivers are imported only when their
scheme is used.
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
    from .sql.open import open_sql

    return await open_sql(url)
