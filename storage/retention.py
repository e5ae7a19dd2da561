"""Retention: closed rooms purged once closed for longer than their kind's policy (a
closed patient case is kept for the time medical-records rules require, then deleted).

Purging a room deletes, in one transaction: its timeline (messages and events), its
memberships, its decryption-failure counts, its encrypted header and name; the room
row stays as a tombstone with status ``purged`` (so ids are never reused and rows of
other areas that name it stay valid), and the purge is written to the audit log in
the same transaction. The room's attachments are marked ``deleting`` in that
transaction (no message can reference them any more); their blobs and rows are
deleted afterwards by the sweeper, blob first, and a failure in between is finished
by the next sweep (:meth:`RetentionStore.purged_attachments`).

"Closed since" is the time of the room's last ``room.updated`` event while its status
is ``closed``: closing a case is such an event, and a closed case takes no other item.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["PurgedRoom", "RetentionStore"]


@dataclass(frozen=True, slots=True)
class PurgedRoom:
    room_id: str
    kind: str
    items: int  # timeline items deleted
    attachments: tuple[str, ...]  # ids now "deleting": delete their blobs, then rows


class RetentionStore(Protocol):
    async def rooms_to_purge(self, kind: str, closed_before: int, limit: int) -> list[str]:
        """Ids of closed rooms of ``kind`` whose closing is older than
        ``closed_before`` (ms), oldest first."""

    async def purge_room(self, room_id: str, closed_before: int, now: int) -> PurgedRoom | None:
        """Purge the room if it is still closed since before ``closed_before`` (checked
        inside the transaction: a case reopened meanwhile is kept); ``None`` if not."""

    async def purged_attachments(self, limit: int) -> list[str]:
        """Attachments of purged rooms still present (their deletion was interrupted)."""
