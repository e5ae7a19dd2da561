"""SQLite part of :class:`storage.push.PushStore`."""

from __future__ import annotations

import sqlite3
from dataclasses import astuple

from ..push import PushSubscription
from .base import SqliteBase

_COLS = "device_id, user_id, kind, endpoint, p256dh, auth, created_at"


class SqlitePush(SqliteBase):
    async def put_push_subscription(self, subscription: PushSubscription) -> None:
        await self._write(
            "put_push_subscription",
            lambda c: c.execute(
                f"INSERT INTO push_subscriptions ({_COLS}) VALUES (?,?,?,?,?,?,?)"
                " ON CONFLICT (device_id) DO UPDATE SET user_id=excluded.user_id,"
                " kind=excluded.kind, endpoint=excluded.endpoint, p256dh=excluded.p256dh,"
                " auth=excluded.auth, created_at=excluded.created_at",
                astuple(subscription),
            ),
        )

    async def push_subscriptions_of(self, user_id: str) -> list[PushSubscription]:
        def q(c: sqlite3.Connection) -> list[PushSubscription]:
            rows = c.execute(
                f"SELECT {_COLS} FROM push_subscriptions WHERE user_id=? ORDER BY created_at,"
                " device_id",
                (user_id,),
            )
            return [PushSubscription(*r) for r in rows]

        return await self._read("push_subscriptions_of", q)

    async def delete_push_subscription(self, device_id: str, endpoint: str | None = None) -> bool:
        def tx(c: sqlite3.Connection) -> bool:
            if endpoint is None:
                cur = c.execute("DELETE FROM push_subscriptions WHERE device_id=?", (device_id,))
            else:
                cur = c.execute(
                    "DELETE FROM push_subscriptions WHERE device_id=? AND endpoint=?",
                    (device_id, endpoint),
                )
            return cur.rowcount > 0

        return await self._write("delete_push_subscription", tx)
