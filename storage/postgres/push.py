"""PostgreSQL part of :class:`storage.push.PushStore`."""

from __future__ import annotations

from dataclasses import astuple

from ..push import PushSubscription
from .base import PostgresBase

_COLS = "device_id, user_id, kind, endpoint, p256dh, auth, created_at"
_SQL_PUT = (
    f"INSERT INTO push_subscriptions ({_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
    " ON CONFLICT (device_id) DO UPDATE SET user_id = excluded.user_id,"
    " kind = excluded.kind, endpoint = excluded.endpoint, p256dh = excluded.p256dh,"
    " auth = excluded.auth, created_at = excluded.created_at"
)
_SQL_OF = (
    f"SELECT {_COLS} FROM push_subscriptions WHERE user_id = $1 ORDER BY created_at, device_id"
)
_SQL_DELETE = (
    "DELETE FROM push_subscriptions WHERE device_id = $1"
    " AND ($2::text IS NULL OR endpoint = $2::text)"
)


class PostgresPush(PostgresBase):
    async def put_push_subscription(self, subscription: PushSubscription) -> None:
        await self._run(
            "put_push_subscription",
            lambda c: c.execute(_SQL_PUT, *astuple(subscription)),
            "statement",
        )

    async def push_subscriptions_of(self, user_id: str) -> list[PushSubscription]:
        rows = await self._run(
            "push_subscriptions_of", lambda c: c.fetch(_SQL_OF, user_id), "statement"
        )
        return [PushSubscription(*r) for r in rows]

    async def delete_push_subscription(self, device_id: str, endpoint: str | None = None) -> bool:
        status = await self._run(
            "delete_push_subscription",
            lambda c: c.execute(_SQL_DELETE, device_id, endpoint),
            "statement",
        )
        return str(status) != "DELETE 0"
