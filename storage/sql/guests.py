"""The SQL store's part of :class:`storage.guests.GuestStore`.

Lock order, as everywhere in this adapter: rooms first (``FOR NO KEY UPDATE``, in id
order), then the guest rows. Invitations of a room are therefore serialised with every
other change of the room, and two promotions of one address (confirmation and log-in
at once) take turns: the second finds the rows already promoted.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import NoSuchRoom
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
from .base import SqlBase
from .engine import Row, Tx
from .events import event
from .outbox import insert_notifications

__all__ = ["SqlGuests"]

_COLS = (
    "id, room_id, email, invited_by, invited_at, invited_seq, expires_at, state, reminders,"
    " notified_at, user_id, resolved_at"
)
_SQL_LOCK_ROOM = "SELECT last_seq FROM rooms WHERE id = $1 FOR NO KEY UPDATE"
_SQL_LOCK_ROOMS = (
    "SELECT id, status FROM rooms WHERE id = ANY($1::text[]) ORDER BY id FOR NO KEY UPDATE"
)
_SQL_PENDING_OF = (
    f"SELECT {_COLS} FROM guests WHERE room_id = $1 AND email = $2 AND state = 'pending'"
)
_SQL_INSERT = (
    "INSERT INTO guests (room_id, email, invited_by, invited_at, invited_seq, expires_at,"
    f" notified_at) VALUES ($1, $2, $3, $4, $5, $6, $4) RETURNING {_COLS}"
)
_SQL_RESTART = (
    "UPDATE guests SET invited_by = $2, invited_at = $3, invited_seq = $4, expires_at = $5,"
    f" reminders = 0, notified_at = $3 WHERE id = $1 RETURNING {_COLS}"
)
_SQL_REMIND = (
    "UPDATE guests SET expires_at = $2, reminders = reminders + 1, notified_at = $3"
    f" WHERE id = $1 RETURNING {_COLS}"
)
_SQL_SET_INVITED_SEQ = f"UPDATE guests SET invited_seq = $2 WHERE id = $1 RETURNING {_COLS}"
_SQL_INVITER_ROLE = "SELECT role FROM memberships WHERE room_id = $1 AND user_id = $2"
_SQL_MARK_REVOKED = "UPDATE guests SET state = 'revoked', resolved_at = $2 WHERE id = $1"
_SQL_EXTEND = f"UPDATE guests SET expires_at = $2 WHERE id = $1 RETURNING {_COLS}"
_SQL_REVOKE = (
    "UPDATE guests SET state = 'revoked', resolved_at = $3"
    f" WHERE room_id = $1 AND email = $2 AND state = 'pending' RETURNING {_COLS}"
)
_SQL_PENDING = (
    f"SELECT {_COLS} FROM guests WHERE room_id = $1 AND state = 'pending' AND expires_at > $2"
    " ORDER BY invited_at, id"
)
_SQL_BY_EMAIL = f"SELECT {_COLS} FROM guests WHERE email = $1 ORDER BY id"
_SQL_PROMOTABLE_ROOMS = (
    "SELECT DISTINCT room_id FROM guests WHERE email = $1 AND state = 'pending' AND expires_at > $2"
)
_SQL_PROMOTABLE = (
    f"SELECT {_COLS} FROM guests WHERE email = $1 AND state = 'pending' AND expires_at > $2"
    " ORDER BY room_id, id FOR UPDATE"
)
_SQL_MARK_PROMOTED = (
    "UPDATE guests SET state = 'promoted', user_id = $2, resolved_at = $3 WHERE id = $1"
)
_SQL_IS_MEMBER = "SELECT 1 FROM memberships WHERE room_id = $1 AND user_id = $2"
_SQL_ADD_MEMBER = (
    "INSERT INTO memberships (room_id, user_id, role, joined_seq) VALUES ($1, $2, 'member', $3)"
)


def _guest(row: Row) -> Guest:
    return Guest(*row)


class SqlGuests(SqlBase):
    async def invite_guests(
        self,
        room_id: str,
        emails: Sequence[str],
        by: str,
        now: int,
        policy: ReminderPolicy,
        notice: InviteNotice,
    ) -> list[Invited]:
        async def tx(c: Tx) -> list[Invited]:
            last_seq = await c.fetchval(_SQL_LOCK_ROOM, room_id)
            if last_seq is None:
                raise NoSuchRoom(f"no room {room_id!r}")
            expires = now + policy.ttl_ms
            out: list[Invited] = []
            notes: list[NewNotification] = []
            for email in dict.fromkeys(emails):
                row = await c.fetchrow(_SQL_PENDING_OF, room_id, email)
                existing = None if row is None else _guest(row)
                action = reinvite_action(existing, now, policy)
                if existing is None:
                    row = await c.fetchrow(_SQL_INSERT, room_id, email, by, now, last_seq, expires)
                elif action == "restart":
                    row = await c.fetchrow(_SQL_RESTART, existing.id, by, now, last_seq, expires)
                elif action == "remind":
                    row = await c.fetchrow(_SQL_REMIND, existing.id, expires, now)
                else:
                    row = await c.fetchrow(_SQL_EXTEND, existing.id, expires)
                assert row is not None
                guest = _guest(row)
                item = None
                if action in ("new", "restart"):
                    item = await event(c, room_id, "guest.invited", by, now, invitation=guest.id)
                    row = await c.fetchrow(_SQL_SET_INVITED_SEQ, guest.id, item.seq)
                    assert row is not None
                    guest = _guest(row)
                if action != "quiet":
                    notes.append(notice(guest, action == "remind"))
                out.append(Invited(guest, action, item))
            await insert_notifications(c, notes, now)
            return out

        return await self.db.run("invite_guests", tx, "transaction")

    async def revoke_guest(self, room_id: str, email: str, now: int) -> Guest | None:
        row = await self.db.run(
            "revoke_guest", lambda c: c.fetchrow(_SQL_REVOKE, room_id, email, now), "write"
        )
        return None if row is None else _guest(row)

    async def pending_guests(self, room_id: str, now: int) -> list[Guest]:
        rows = await self.db.run(
            "pending_guests", lambda c: c.fetch(_SQL_PENDING, room_id, now), "read"
        )
        return [_guest(r) for r in rows]

    async def guests_by_email(self, email: str) -> list[Guest]:
        rows = await self.db.run("guests_by_email", lambda c: c.fetch(_SQL_BY_EMAIL, email), "read")
        return [_guest(r) for r in rows]

    async def promote_guest(
        self, email: str, user_id: str, now: int, notices: PromotionNotices | None = None
    ) -> list[Promotion]:
        async def tx(c: Tx) -> list[Promotion]:
            room_ids = [r[0] for r in await c.fetch(_SQL_PROMOTABLE_ROOMS, email, now)]
            if not room_ids:
                return []
            status = {r[0]: r[1] for r in await c.fetch(_SQL_LOCK_ROOMS, room_ids)}
            promotions: list[Promotion] = []
            for guest in map(_guest, await c.fetch(_SQL_PROMOTABLE, email, now)):
                if status.get(guest.room_id) != "open":
                    continue  # a closed case (or one invited since): stays pending
                role = await c.fetchval(_SQL_INVITER_ROLE, guest.room_id, guest.invited_by)
                if role not in ("owner", "admin"):  # the inviter lost the right to invite
                    await c.execute(_SQL_MARK_REVOKED, guest.id, now)
                    continue
                await c.execute(_SQL_MARK_PROMOTED, guest.id, user_id, now)
                if await c.fetchrow(_SQL_IS_MEMBER, guest.room_id, user_id) is not None:
                    continue
                item = await event(
                    c,
                    guest.room_id,
                    "member.promoted",
                    guest.invited_by,
                    now,
                    user=user_id,
                    upto=guest.invited_seq,
                )
                await c.execute(_SQL_ADD_MEMBER, guest.room_id, user_id, item.seq)
                promotions.append(
                    Promotion(
                        guest.room_id, email, user_id, guest.invited_by, guest.invited_seq, item
                    )
                )
            if notices is not None and promotions:
                await insert_notifications(c, list(notices(promotions)), now)
            return promotions

        return await self.db.run("promote_guest", tx, "transaction")
