"""The SQL store's part of :class:`storage.push.PushStore`."""

from __future__ import annotations

from dataclasses import astuple

from ..push import PushSubscription
from .base import SqlBase

__all__ = ["SqlPush"]

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


class SqlPush(SqlBase):
    async def put_push_subscription(self, subscription: PushSubscription) -> None:
        await self.db.run(
            "put_push_subscription",
            lambda c: c.execute(_SQL_PUT, *astuple(subscription)),
            "write",
        )

    async def push_subscriptions_of(self, user_id: str) -> list[PushSubscription]:
        rows = await self.db.run(
            "push_subscriptions_of", lambda c: c.fetch(_SQL_OF, user_id), "read"
        )
        return [PushSubscription(*r) for r in rows]

    async def delete_push_subscription(self, device_id: str, endpoint: str | None = None) -> bool:
        if endpoint is None:
            changed = await self.db.run(
                "delete_push_subscription",
                lambda c: c.execute(
                    "DELETE FROM push_subscriptions WHERE device_id = $1", device_id
                ),
                "write",
            )
        else:
            changed = await self.db.run(
                "delete_push_subscription",
                lambda c: c.execute(
                    "DELETE FROM push_subscriptions WHERE device_id = $1 AND endpoint = $2",
                    device_id,
                    endpoint,
                ),
                "write",
            )
        return changed > 0
