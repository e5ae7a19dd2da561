"""The SQL store's part of :class:`storage.outbox.OutboxStore`.

Claims use ``FOR UPDATE SKIP LOCKED``: workers on several nodes take disjoint rows
without waiting for each other (SQLite's one writer claims serially)."""

from __future__ import annotations

from collections.abc import Sequence

from ..outbox import SENSITIVE_KEYS, Channel, NewNotification, Notification, dump_data, load_data
from .base import SqlBase
from .engine import Row, Tx

__all__ = ["SqlOutbox", "insert_notifications"]

_COLS = (
    "id, channel, recipient, template, data, state, attempts, next_attempt_at, created_at,"
    " sent_at, last_error"
)
_SQL_INSERT = (
    "INSERT INTO outbox (channel, recipient, template, data, next_attempt_at, created_at)"
    " SELECT c, r, t, d, $5::bigint, $5::bigint"
    " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])"
    " WITH ORDINALITY AS u(c, r, t, d, i)"
    " ORDER BY i"
    " RETURNING id"
)
_SQL_CLAIM = (
    "UPDATE outbox SET next_attempt_at = $2, attempts = attempts + 1"
    " WHERE id IN (SELECT id FROM outbox WHERE state = 'pending' AND next_attempt_at <= $1"
    " ORDER BY next_attempt_at, id LIMIT $3 FOR UPDATE SKIP LOCKED)"
    f" RETURNING {_COLS}"
)


# Where the statements below put ``data`` with the sensitive keys blanked (the engine's
# JSON editing, see Engine.blank_json).
_BLANKED = "<blanked>"
_SQL_SENT = (
    f"UPDATE outbox SET state = 'sent', sent_at = $2, last_error = NULL, data = {_BLANKED}"
    " WHERE id = $1"
)
_SQL_SENT_MANY = (
    f"UPDATE outbox SET state = 'sent', sent_at = $2, last_error = NULL, data = {_BLANKED}"
    " WHERE id = ANY($1::bigint[])"
)
_SQL_FAILED = (
    "UPDATE outbox SET state = $2, next_attempt_at = $3, last_error = $4,"
    f" data = CASE WHEN $2 = 'failed' THEN {_BLANKED} ELSE data END WHERE id = $1"
)
_SQL_LIST = (
    f"SELECT {_COLS} FROM outbox WHERE ($1::text IS NULL OR channel = $1)"
    " AND ($2::text IS NULL OR recipient = $2) ORDER BY id DESC LIMIT $3"
)
_SQL_BACKLOG = "SELECT count(*) FROM outbox WHERE state = 'pending' AND next_attempt_at <= $1"


def _notification(row: Row) -> Notification:
    (nid, channel, recipient, template, data, state, attempts, due, at, sent, error) = row
    return Notification(
        nid, channel, recipient, template, load_data(data), state, attempts, due, at, sent, error
    )


async def insert_notifications(c: Tx, items: Sequence[NewNotification], now: int) -> list[int]:
    """Insert ``items`` inside the caller's transaction; return their ids, in order."""
    if not items:
        return []
    rows = await c.fetch(
        _SQL_INSERT,
        [n.channel for n in items],
        [n.recipient for n in items],
        [n.template for n in items],
        [dump_data(n.data) for n in items],
        now,
    )
    return sorted(int(r[0]) for r in rows)


class SqlOutbox(SqlBase):
    def _blanking(self, sql: str) -> str:
        return sql.replace(_BLANKED, self.db.blank_json("data", SENSITIVE_KEYS))

    async def enqueue_notifications(self, items: Sequence[NewNotification], now: int) -> list[int]:
        return await self.db.run(
            "enqueue_notifications", lambda c: insert_notifications(c, items, now), "write"
        )

    async def claim_notifications(self, now: int, limit: int, lease_ms: int) -> list[Notification]:
        rows = await self.db.run(
            "claim_notifications",
            lambda c: c.fetch(_SQL_CLAIM, now, now + lease_ms, limit),
            "write",
        )
        return sorted((_notification(r) for r in rows), key=lambda n: n.id)

    async def mark_notification_sent(self, notification_id: int, now: int) -> None:
        await self.db.run(
            "mark_notification_sent",
            lambda c: c.execute(self._blanking(_SQL_SENT), notification_id, now),
            "write",
        )

    async def mark_notifications_sent(self, notification_ids: Sequence[int], now: int) -> None:
        await self.db.run(
            "mark_notifications_sent",
            lambda c: c.execute(self._blanking(_SQL_SENT_MANY), list(notification_ids), now),
            "write",
        )

    async def mark_notification_failed(
        self, notification_id: int, error: str, retry_at: int | None, now: int
    ) -> None:
        await self.db.run(
            "mark_notification_failed",
            lambda c: c.execute(
                self._blanking(_SQL_FAILED),
                notification_id,
                "failed" if retry_at is None else "pending",
                now if retry_at is None else retry_at,
                error[:500],
            ),
            "write",
        )

    async def notifications(
        self, channel: Channel | None = None, recipient: str | None = None, limit: int = 100
    ) -> list[Notification]:
        rows = await self.db.run(
            "notifications", lambda c: c.fetch(_SQL_LIST, channel, recipient, limit), "read"
        )
        return [_notification(r) for r in rows]

    async def outbox_backlog(self, now: int) -> int:
        count = await self.db.run("outbox_backlog", lambda c: c.fetchval(_SQL_BACKLOG, now), "read")
        return int(count or 0)
