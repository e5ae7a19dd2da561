"""The directory's PostgreSQL half, until it is written once like the rest of the store:
its transactions run on :class:`~storage.sql.postgres.PostgresEngine`'s pool."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Literal, TypeAlias, TypeVar

import asyncpg

from ..outbox import NewNotification
from ..sql import outbox
from ..sql.base import SqlBase
from ..sql.engine import Tx
from ..sql.postgres import PostgresTx

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

__all__ = ["Conn", "PostgresBase", "insert_notifications"]

T = TypeVar("T")
Conn: TypeAlias = "PoolConnectionProxy[asyncpg.Record]"


async def insert_notifications(c: Conn, items: Sequence[NewNotification], now: int) -> list[int]:
    return await outbox.insert_notifications(PostgresTx(c), items, now)


class PostgresBase(SqlBase):
    async def _run(
        self,
        name: str,
        fn: Callable[[Conn], Awaitable[T]],
        mode: Literal["statement", "transaction", "snapshot"],
    ) -> T:
        async def on_conn(tx: Tx) -> T:
            assert isinstance(tx, PostgresTx)
            return await fn(tx.conn)  # type: ignore[arg-type]

        return await self.db.run(name, on_conn, "write" if mode == "statement" else mode)
