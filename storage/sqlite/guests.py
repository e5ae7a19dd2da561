"""SQLite part of :class:`storage.guests.GuestStore`."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import NotFound
from ..guests import (
    Guest,
    Invited,
    InviteNotice,
    Promotion,
    PromotionNotices,
    ReminderPolicy,
    reinvite_action,
)
from ..outbox import NewNotification
from ..types import TimelineItem
from .base import SqliteBase
from .outbox import insert_notifications

__all__ = ["SqliteGuests"]

_COLS = (
    "id, room_id, email, invited_by, invited_at, invited_seq, expires_at, state, reminders,"
    " notified_at, user_id, resolved_at"
)


def _guest(row: Any) -> Guest:
    return Guest(*row)


def _one(c: sqlite3.Connection, sql: str, args: tuple[Any, ...]) -> Guest:
    return _guest(c.execute(sql, args).fetchone())


class SqliteGuests(SqliteBase):
    if TYPE_CHECKING:  # provided by SqliteStore: the one writer of timeline events

        def _event(
            self, c: sqlite3.Connection, room_id: str, kind: str, by: str, now: int, **meta: Any
        ) -> TimelineItem: ...

    async def invite_guests(
        self,
        room_id: str,
        emails: Sequence[str],
        by: str,
        now: int,
        policy: ReminderPolicy,
        notice: InviteNotice,
    ) -> list[Invited]:
        def tx(c: sqlite3.Connection) -> list[Invited]:
            room = c.execute("SELECT last_seq FROM rooms WHERE id = ?", (room_id,)).fetchone()
            if room is None:
                raise NotFound(f"no room {room_id}")
            expires = now + policy.ttl_ms
            out: list[Invited] = []
            notes: list[NewNotification] = []
            for email in dict.fromkeys(emails):
                row = c.execute(
                    f"SELECT {_COLS} FROM guests"
                    " WHERE room_id = ? AND email = ? AND state = 'pending'",
                    (room_id, email),
                ).fetchone()
                existing = None if row is None else _guest(row)
                action = reinvite_action(existing, now, policy)
                if existing is None:
                    guest = _one(
                        c,
                        "INSERT INTO guests (room_id, email, invited_by, invited_at, invited_seq,"
                        f" expires_at, notified_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING {_COLS}",
                        (room_id, email, by, now, room[0], expires, now),
                    )
                elif action == "restart":
                    guest = _one(
                        c,
                        "UPDATE guests SET invited_by = ?, invited_at = ?, invited_seq = ?,"
                        " expires_at = ?, reminders = 0, notified_at = ?"
                        f" WHERE id = ? RETURNING {_COLS}",
                        (by, now, room[0], expires, now, existing.id),
                    )
                elif action == "remind":
                    guest = _one(
                        c,
                        "UPDATE guests SET expires_at = ?, reminders = reminders + 1,"
                        f" notified_at = ? WHERE id = ? RETURNING {_COLS}",
                        (expires, now, existing.id),
                    )
                else:
                    guest = _one(
                        c,
                        f"UPDATE guests SET expires_at = ? WHERE id = ? RETURNING {_COLS}",
                        (expires, existing.id),
                    )
                item = None
                if action in ("new", "restart"):
                    item = self._event(c, room_id, "guest.invited", by, now, invitation=guest.id)
                    guest = _one(
                        c,
                        f"UPDATE guests SET invited_seq = ? WHERE id = ? RETURNING {_COLS}",
                        (item.seq, guest.id),
                    )
                if action != "quiet":
                    notes.append(notice(guest, action == "remind"))
                out.append(Invited(guest, action, item))
            insert_notifications(c, notes, now)
            return out

        return await self._write("invite_guests", tx)

    async def revoke_guest(self, room_id: str, email: str, now: int) -> Guest | None:
        def tx(c: sqlite3.Connection) -> Guest | None:
            row = c.execute(
                "UPDATE guests SET state = 'revoked', resolved_at = ?"
                f" WHERE room_id = ? AND email = ? AND state = 'pending' RETURNING {_COLS}",
                (now, room_id, email),
            ).fetchone()
            return None if row is None else _guest(row)

        return await self._write("revoke_guest", tx)

    async def pending_guests(self, room_id: str, now: int) -> list[Guest]:
        def q(c: sqlite3.Connection) -> list[Guest]:
            rows = c.execute(
                f"SELECT {_COLS} FROM guests WHERE room_id = ? AND state = 'pending'"
                " AND expires_at > ? ORDER BY invited_at, id",
                (room_id, now),
            )
            return [_guest(r) for r in rows]

        return await self._read("pending_guests", q)

    async def guests_by_email(self, email: str) -> list[Guest]:
        def q(c: sqlite3.Connection) -> list[Guest]:
            rows = c.execute(f"SELECT {_COLS} FROM guests WHERE email = ? ORDER BY id", (email,))
            return [_guest(r) for r in rows]

        return await self._read("guests_by_email", q)

    async def promote_guest(
        self, email: str, user_id: str, now: int, notices: PromotionNotices | None = None
    ) -> list[Promotion]:
        def tx(c: sqlite3.Connection) -> list[Promotion]:
            rows = c.execute(
                f"SELECT {_COLS} FROM guests WHERE email = ? AND state = 'pending'"
                " AND expires_at > ? ORDER BY room_id, id",
                (email, now),
            ).fetchall()
            promotions: list[Promotion] = []
            for guest in map(_guest, rows):
                status = c.execute(
                    "SELECT status FROM rooms WHERE id = ?", (guest.room_id,)
                ).fetchone()
                if status is None or status[0] != "open":
                    continue  # a closed case: stays pending until it reopens
                inviter = c.execute(
                    "SELECT role FROM memberships WHERE room_id = ? AND user_id = ?",
                    (guest.room_id, guest.invited_by),
                ).fetchone()
                if inviter is None or inviter[0] not in ("owner", "admin"):
                    c.execute(  # the inviter lost the right to invite: so did the invitation
                        "UPDATE guests SET state = 'revoked', resolved_at = ? WHERE id = ?",
                        (now, guest.id),
                    )
                    continue
                c.execute(
                    "UPDATE guests SET state = 'promoted', user_id = ?, resolved_at = ?"
                    " WHERE id = ?",
                    (user_id, now, guest.id),
                )
                member = c.execute(
                    "SELECT 1 FROM memberships WHERE room_id = ? AND user_id = ?",
                    (guest.room_id, user_id),
                ).fetchone()
                if member is not None:
                    continue
                item = self._event(
                    c,
                    guest.room_id,
                    "member.promoted",
                    guest.invited_by,
                    now,
                    user=user_id,
                    upto=guest.invited_seq,
                )
                c.execute(
                    "INSERT INTO memberships (room_id, user_id, role, joined_seq)"
                    " VALUES (?, ?, 'member', ?)",
                    (guest.room_id, user_id, item.seq),
                )
                promotions.append(
                    Promotion(
                        guest.room_id, email, user_id, guest.invited_by, guest.invited_seq, item
                    )
                )
            if notices is not None and promotions:
                insert_notifications(c, list(notices(promotions)), now)
            return promotions

        return await self._write("promote_guest", tx)
