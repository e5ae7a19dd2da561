"""The SQL store's part of :class:`storage.devices.DeviceStore`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..devices import IdentityKey, RevokedDevice
from ..types import Device, TimelineItem
from .base import SqlBase
from .engine import Tx
from .events import event

__all__ = ["DEVICE_COLS", "ROOM_IDS_OF", "SqlDevices"]

DEVICE_COLS = "id, user_id, name, created_at, last_seen_at"

_SQL_IDENTITY = "SELECT record FROM identity_keys WHERE user_id = $1"
_SQL_INSERT_IDENTITY = (
    "INSERT INTO identity_keys (user_id, record, updated_at) VALUES ($1, $2, $3)"
    " ON CONFLICT (user_id) DO UPDATE SET record = excluded.record,"
    " updated_at = excluded.updated_at"
)
_SQL_DROP_SIGNATURES = "UPDATE device_keys SET signature = NULL WHERE user_id = $1"
_SQL_IDENTITIES = (
    "SELECT user_id, record, updated_at FROM identity_keys WHERE user_id = ANY($1::text[])"
)
_SQL_SIGN = (
    "UPDATE device_keys SET signature = $4, updated_at = $5"
    " WHERE device_id = $2 AND user_id = $1 AND bundle = $3"
)
_SQL_TOUCH = "UPDATE devices SET last_seen_at = $2 WHERE id = $1 AND revoked_at IS NULL"
_SQL_RENAME = "UPDATE devices SET name = $3 WHERE id = $2 AND user_id = $1 AND revoked_at IS NULL"
_SQL_DEVICE_OF = (
    f"SELECT {DEVICE_COLS} FROM devices WHERE id = $2 AND user_id = $1 AND revoked_at IS NULL"
)
_SQL_MARK_REVOKED = "UPDATE devices SET revoked_at = $2 WHERE id = $1"
_SQL_DEVICE_SESSIONS = "SELECT token_hash FROM sessions WHERE device_id = $1"
_SQL_REVOKE = (
    "DELETE FROM sessions WHERE device_id = $1",
    "DELETE FROM device_keys WHERE device_id = $1",
    "DELETE FROM push_subscriptions WHERE device_id = $1",
    "DELETE FROM to_device WHERE device_id = $1",
)
ROOM_IDS_OF = "SELECT room_id FROM memberships WHERE user_id = $1 ORDER BY room_id"


class SqlDevices(SqlBase):
    async def put_identity(self, user_id: str, record: bytes, now: int, *, reset: bool) -> bool:
        async def tx(c: Tx) -> bool:
            stored = await c.fetchval(_SQL_IDENTITY, user_id)
            if stored is not None and bytes(stored) == record:
                return True
            if stored is not None and not reset:
                return False
            if stored is not None:
                await c.execute(_SQL_DROP_SIGNATURES, user_id)
            await c.execute(_SQL_INSERT_IDENTITY, user_id, record, now)
            return True

        return await self.db.run("put_identity", tx, "transaction")

    async def identities(self, user_ids: Sequence[str]) -> list[IdentityKey]:
        ids = list(dict.fromkeys(user_ids))
        rows = await self.db.run("identities", lambda c: c.fetch(_SQL_IDENTITIES, ids), "read")
        # Sorted here: the database's collation need not order ids as bytes do.
        return sorted((IdentityKey(r[0], bytes(r[1]), r[2]) for r in rows), key=lambda k: k.user_id)

    async def sign_device(
        self, user_id: str, device_id: str, bundle: bytes, signature: bytes, now: int
    ) -> bool:
        changed = await self.db.run(
            "sign_device",
            lambda c: c.execute(_SQL_SIGN, user_id, device_id, bundle, signature, now),
            "write",
        )
        return bool(changed)

    async def touch_devices(self, seen: Mapping[str, int]) -> None:
        rows = list(seen.items())

        async def tx(c: Tx) -> None:
            await c.executemany(_SQL_TOUCH, rows)

        await self.db.run("touch_devices", tx, "transaction")

    async def rename_device(self, user_id: str, device_id: str, name: str) -> Device | None:
        async def tx(c: Tx) -> Device | None:
            if not await c.execute(_SQL_RENAME, user_id, device_id, name):
                return None
            row = await c.fetchrow(_SQL_DEVICE_OF, user_id, device_id)
            return None if row is None else Device(*row)

        return await self.db.run("rename_device", tx, "transaction")

    async def revoke_device(self, user_id: str, device_id: str, now: int) -> RevokedDevice | None:
        async def tx(c: Tx) -> RevokedDevice | None:
            row = await c.fetchrow(_SQL_DEVICE_OF, user_id, device_id)
            if row is None:
                return None
            await c.execute(_SQL_MARK_REVOKED, device_id, now)
            sessions = [bytes(r[0]) for r in await c.fetch(_SQL_DEVICE_SESSIONS, device_id)]
            for sql in _SQL_REVOKE:
                await c.execute(sql, device_id)
            events: list[TimelineItem] = []
            for (room_id,) in await c.fetch(ROOM_IDS_OF, user_id):
                events.append(
                    await event(
                        c, room_id, "device.revoked", user_id, now, user=user_id, device=device_id
                    )
                )
            return RevokedDevice(Device(*row), sessions, events)

        return await self.db.run("revoke_device", tx, "transaction")
