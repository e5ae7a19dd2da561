"""What every part of :class:`~storage.sql.store.SqlStore` shares: its engine."""

from __future__ import annotations

from .engine import Engine

__all__ = ["SqlBase"]


class SqlBase:
    """The engine every domain mixin runs its transactions on."""

    def __init__(self, db: Engine) -> None:
        self.db = db

    async def close(self) -> None:
        """Release every connection; a second call does nothing."""
        await self.db.close()

    async def ping(self) -> None:
        """Raise :class:`~storage.errors.Unavailable` if the database is unreachable."""
        await self.db.run("ping", lambda c: c.fetchval("SELECT 1"), "read")
