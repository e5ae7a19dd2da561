"""The directory's SQLite half, until it is written once like the rest of the store:
plain functions run on :class:`~storage.sql.sqlite.SqliteEngine`'s threads."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import TypeVar

from ..outbox import NewNotification
from ..sql import outbox
from ..sql.base import SqlBase
from ..sql.sqlite import SqliteEngine, SqliteTx, drive

__all__ = ["SqliteBase", "insert_notifications"]

T = TypeVar("T")


def insert_notifications(
    c: sqlite3.Connection, items: Sequence[NewNotification], now: int
) -> list[int]:
    return drive(outbox.insert_notifications(SqliteTx(c), items, now))


class SqliteBase(SqlBase):
    async def _read(self, name: str, fn: Callable[[sqlite3.Connection], T]) -> T:
        assert isinstance(self.db, SqliteEngine)
        return await self.db.run_sync(name, fn, write=False)

    async def _write(self, name: str, fn: Callable[[sqlite3.Connection], T]) -> T:
        assert isinstance(self.db, SqliteEngine)
        return await self.db.run_sync(name, fn, write=True)
