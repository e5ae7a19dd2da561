"""PostgreSQL adapter (asyncpg): several nodes share one database.

Imported only when a ``postgresql://`` or ``postgres://`` URL is opened; see
:mod:`storage.postgres.store` for the guarantees and the URL options.
"""

from __future__ import annotations

from .store import PostgresOptions, PostgresStore, open_postgres

__all__ = ["PostgresOptions", "PostgresStore", "open_postgres"]
