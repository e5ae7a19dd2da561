"""Helpers every part of the SQL store shares: room events and user rows."""

from __future__ import annotations

from typing import Any

from ..errors import NoSuchRoom
from ..meta import pack_meta
from ..types import TimelineItem, User
from .engine import Row, Tx

__all__ = ["event", "user_from_row"]

_SQL_NEXT_SEQ = "UPDATE rooms SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq"
_SQL_EVENT = (
    "INSERT INTO timeline (room_id, seq, kind, ts, sender, meta) VALUES ($1, $2, $3, $4, $5, $6)"
)


def user_from_row(row: Row) -> User:
    values = list(row)
    values[10] = bool(values[10])  # verified
    values[12] = bool(values[12])  # email_confirmed
    return User(*values)


async def event(c: Tx, room_id: str, kind: str, by: str, now: int, **meta: Any) -> TimelineItem:
    """Take the room's next seq and write the event ``kind`` at it (``None`` values of
    ``meta`` left out); raise :class:`NotFound` if there is no such room."""
    meta = {"by": by, **{k: v for k, v in meta.items() if v is not None}}
    seq = await c.fetchval(_SQL_NEXT_SEQ, room_id)
    if seq is None:
        raise NoSuchRoom(f"no room {room_id!r}")
    await c.execute(_SQL_EVENT, room_id, seq, kind, now, by, pack_meta(meta))
    return TimelineItem(room_id, seq, kind, now, sender=by, meta=meta)
