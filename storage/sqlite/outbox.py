"""SQLite part of :class:`storage.outbox.OutboxStore`."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from ..outbox import SENSITIVE_KEYS, Channel, NewNotification, Notification, dump_data, load_data
from .base import SqliteBase

__all__ = ["SqliteOutbox", "insert_notifications"]

_COLS = (
    "id, channel, recipient, template, data, state, attempts, next_attempt_at, created_at,"
    " sent_at, last_error"
)


# json_replace changes only keys that are there.
_BLANKED = "json_replace(data, {})".format(", ".join(f"'$.{k}', ''" for k in SENSITIVE_KEYS))
_SQL_SENT = (
    f"UPDATE outbox SET state = 'sent', sent_at = ?, last_error = NULL, data = {_BLANKED}"
    " WHERE id = ?"
)


def _notification(row: Any) -> Notification:
    (nid, channel, recipient, template, data, state, attempts, due, at, sent, error) = row
    return Notification(
        nid, channel, recipient, template, load_data(data), state, attempts, due, at, sent, error
    )


def insert_notifications(
    c: sqlite3.Connection, items: Sequence[NewNotification], now: int
) -> list[int]:
    """Insert ``items`` inside the caller's transaction; return their ids."""
    return [
        c.execute(
            "INSERT INTO outbox (channel, recipient, template, data, next_attempt_at, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
            (n.channel, n.recipient, n.template, dump_data(n.data), now, now),
        ).fetchone()[0]
        for n in items
    ]


class SqliteOutbox(SqliteBase):
    async def enqueue_notifications(self, items: Sequence[NewNotification], now: int) -> list[int]:
        return await self._write(
            "enqueue_notifications", lambda c: insert_notifications(c, items, now)
        )

    async def claim_notifications(self, now: int, limit: int, lease_ms: int) -> list[Notification]:
        def tx(c: sqlite3.Connection) -> list[Notification]:
            rows = c.execute(
                "UPDATE outbox SET next_attempt_at = ?, attempts = attempts + 1"
                " WHERE id IN (SELECT id FROM outbox WHERE state = 'pending'"
                " AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?)"
                f" RETURNING {_COLS}",
                (now + lease_ms, now, limit),
            ).fetchall()
            return sorted((_notification(r) for r in rows), key=lambda n: n.id)

        return await self._write("claim_notifications", tx)

    async def mark_notification_sent(self, notification_id: int, now: int) -> None:
        await self._write(
            "mark_notification_sent",
            lambda c: c.execute(_SQL_SENT, (now, notification_id)),
        )

    async def mark_notifications_sent(self, notification_ids: Sequence[int], now: int) -> None:
        await self._write(
            "mark_notifications_sent",
            lambda c: c.executemany(_SQL_SENT, [(now, i) for i in notification_ids]),
        )

    async def mark_notification_failed(
        self, notification_id: int, error: str, retry_at: int | None, now: int
    ) -> None:
        await self._write(
            "mark_notification_failed",
            lambda c: c.execute(
                "UPDATE outbox SET state = ?, next_attempt_at = ?, last_error = ?,"
                f" data = CASE WHEN ? THEN {_BLANKED} ELSE data END WHERE id = ?",
                (
                    "failed" if retry_at is None else "pending",
                    now if retry_at is None else retry_at,
                    error[:500],
                    retry_at is None,
                    notification_id,
                ),
            ),
        )

    async def notifications(
        self, channel: Channel | None = None, recipient: str | None = None, limit: int = 100
    ) -> list[Notification]:
        def q(c: sqlite3.Connection) -> list[Notification]:
            rows = c.execute(
                f"SELECT {_COLS} FROM outbox WHERE (? IS NULL OR channel = ?)"
                " AND (? IS NULL OR recipient = ?) ORDER BY id DESC LIMIT ?",
                (channel, channel, recipient, recipient, limit),
            )
            return [_notification(r) for r in rows]

        return await self._read("notifications", q)

    async def outbox_backlog(self, now: int) -> int:
        def q(c: sqlite3.Connection) -> int:
            row = c.execute(
                "SELECT count(*) FROM outbox WHERE state = 'pending' AND next_attempt_at <= ?",
                (now,),
            ).fetchone()
            return int(row[0])

        return await self._read("outbox_backlog", q)
