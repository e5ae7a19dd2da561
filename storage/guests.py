"""Guests: e-mail addresses invited into a room before (or without) having an account.

An invitation is a row per (room, address) with a state. Transitions, all here:

    (none)   --invite-->  pending     an e-mail goes out and a ``guest.invited`` timeline
                                      event is written (same transaction)
    pending  --invite-->  pending     expiry pushed back; a reminder e-mail only if the
                                      last one is older than ``remind_after_ms`` and
                                      fewer than ``max_reminders`` were sent; if it had
                                      expired it starts afresh (new e-mail, a new
                                      ``guest.invited`` event, no reminders)
    pending  --promote--> promoted    the address's account confirmed its e-mail: the
                                      user becomes a member (``member.promoted``)
    pending  --revoke-->  revoked     by a room admin; never promoted afterwards
    promoted, revoked --invite--> a new pending row

Invariants (every adapter, checked by ``tests/storage/test_guests_contract.py``):

- At most one ``pending`` row per (room, address); addresses are stored normalised
  (:func:`normalise_email`) by the caller, so matching is case-insensitive.
- A pending row past ``expires_at`` is never promoted and no longer listed.
- ``invited_seq`` is the seq of the invitation's ``guest.invited`` event (``meta``:
  ``by``, ``invitation`` the row id; never the address): members' clients start a new
  sender key when they see it, and forward to the promoted guest only keys created
  after it (SPEC.md §11.3).
- :meth:`GuestStore.promote_guest` is one transaction: every pending, unexpired
  invitation of the address in an open room whose inviter is still its owner or an
  admin becomes a membership (role ``member``) with one ``member.promoted`` timeline
  item per room (``meta``: ``user``, ``by`` the inviter, ``upto`` the invitation's
  ``invited_seq``), in the room's gapless seq order, together with the notifications
  its ``notices`` callback returns. An invitation whose inviter is no longer the
  room's owner or an admin is revoked instead. Calling it again finds nothing left: it
  is idempotent.
  An invitation into a room the user is already a member of is marked promoted
  without an event. Invitations into a closed patient case stay pending until it
  reopens.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from .outbox import NewNotification
from .types import TimelineItem

__all__ = [
    "Guest",
    "GuestState",
    "GuestStore",
    "InviteNotice",
    "Invited",
    "Promotion",
    "PromotionNotices",
    "ReminderPolicy",
    "normalise_email",
    "reinvite_action",
]

GuestState = Literal["pending", "promoted", "revoked"]


def normalise_email(address: str) -> str:
    """The form addresses are stored and compared in: trimmed, Unicode NFC (one
    spelling of "é"), and lower-cased (the whole address: no mail system our users rely
    on distinguishes local-part case). The one normalisation of the project: REST
    validation (``server.routes.validation.email``) uses it too."""
    return unicodedata.normalize("NFC", address.strip().lower())


@dataclass(frozen=True, slots=True)
class Guest:
    id: int
    room_id: str
    email: str  # normalised
    invited_by: str
    invited_at: int
    invited_seq: int  # seq of the guest.invited event: where "their" history starts
    expires_at: int
    state: GuestState
    reminders: int  # reminder e-mails sent after the first one
    notified_at: int  # last e-mail (invitation or reminder)
    user_id: str | None  # set once promoted
    resolved_at: int | None  # promoted or revoked at


@dataclass(frozen=True, slots=True)
class ReminderPolicy:
    ttl_ms: int = 30 * 24 * 3600 * 1000  # an invitation lasts this long after the last invite
    remind_after_ms: int = 24 * 3600 * 1000
    max_reminders: int = 3


ReinviteAction = Literal["new", "restart", "remind", "quiet"]


def reinvite_action(existing: Guest | None, now: int, policy: ReminderPolicy) -> ReinviteAction:
    """What inviting an address does given its pending row (the table above): "new"
    (no pending row), "restart" (it had expired), "remind" (a reminder is due), or
    "quiet" (just push the expiry back)."""
    if existing is None:
        return "new"
    if existing.expires_at <= now:
        return "restart"
    if (
        now - existing.notified_at >= policy.remind_after_ms
        and existing.reminders < policy.max_reminders
    ):
        return "remind"
    return "quiet"


@dataclass(frozen=True, slots=True)
class Invited:
    """The outcome of inviting one address: its pending row after the call, and
    whether an e-mail was enqueued (a new invitation or a due reminder); ``item``: the
    ``guest.invited`` event written ("new" and "restart" only)."""

    guest: Guest
    action: ReinviteAction
    item: TimelineItem | None = None

    @property
    def notified(self) -> bool:
        return self.action != "quiet"


@dataclass(frozen=True, slots=True)
class Promotion:
    """One room an address's invitation was turned into a membership of."""

    room_id: str
    email: str
    user_id: str
    invited_by: str
    invited_seq: int
    item: TimelineItem  # the member.promoted event


# Builds the e-mail of one invitation (the guest row, and whether it is a reminder).
InviteNotice = Callable[[Guest, bool], NewNotification]
# Builds the notifications of a promotion (webhooks...), written in its transaction.
PromotionNotices = Callable[[Sequence[Promotion]], Sequence[NewNotification]]


class GuestStore(Protocol):
    async def invite_guests(
        self,
        room_id: str,
        emails: Sequence[str],
        by: str,
        now: int,
        policy: ReminderPolicy,
        notice: InviteNotice,
    ) -> list[Invited]:
        """Invite normalised ``emails`` (the table above), in order, in one transaction
        that also enqueues the e-mails ``notice`` builds (for "new", "restart" and
        "remind"). Raise :class:`~storage.errors.NotFound` if there is no such room."""

    async def revoke_guest(self, room_id: str, email: str, now: int) -> Guest | None:
        """Revoke the pending invitation of ``email`` (expired or not); ``None`` if
        there is none."""

    async def pending_guests(self, room_id: str, now: int) -> list[Guest]:
        """The room's pending, unexpired invitations, oldest first."""

    async def guests_by_email(self, email: str) -> list[Guest]:
        """Every invitation of ``email``, any state, oldest first."""

    async def promote_guest(
        self, email: str, user_id: str, now: int, notices: PromotionNotices | None = None
    ) -> list[Promotion]:
        """Turn the address's invitations into memberships of ``user_id`` (see the
        module doc); the promotions in room id order, ``[]`` if there was none.
        ``notices`` is called (inside the transaction, so it must be pure and may be
        called again on a retry) only when there is at least one promotion."""
