"""Guests invited by e-mail, and their promotion to members.

- :func:`invite_to_room` is the one way into a room by invitation, for ``room.invite``
  and for any other caller (the directory's "invite" action): it checks that ``by`` is
  the owner or an admin of an open group or patient case, adds the named users, and
  for each e-mail address either adds the account that owns it (if that account
  confirmed it) or records a guest invitation, whose e-mail goes out through the
  outbox in the same transaction (re-inviting never spams: see :mod:`storage.guests`).
- :func:`promote` turns every pending invitation of a user's confirmed address into a
  membership, in one transaction (which also enqueues the ``guest.promoted`` webhooks),
  then tells the rooms (``member.promoted``, the new member's connections attached).
  It is idempotent: the routes call it (:func:`promote_quietly`) when an address is
  confirmed *and* at every log-in of a confirmed account, so a crash between the two
  steps loses nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

from protocol import encode
from protocol.errors import ErrorCode
from protocol.frames import Ack, RoomUninvite
from storage.base import RoomStore, UserStore
from storage.guests import (
    Guest,
    GuestStore,
    Invited,
    Promotion,
    PromotionNotices,
    ReminderPolicy,
    normalise_email,
)
from storage.outbox import NewNotification
from storage.types import RoomMembers, TimelineItem, User

from ..clock import now_ms
from ..errors import ApiError
from ..fields import email as valid_email
from ..wire import item_frame
from .context import Caller, Services, require_admin

__all__ = [
    "InviteResult",
    "email_confirmed",
    "invite_to_room",
    "on_room_uninvite",
    "promote",
    "promote_quietly",
]


class GuestPorts(UserStore, RoomStore, GuestStore, Protocol):
    """What guests uses of the store."""


log = logging.getLogger("confrere.guests")

_KIND_LABELS = {"group": "un groupe", "patient_case": "un dossier patient"}


@dataclass(frozen=True, slots=True)
class InviteResult:
    """``item``: the ``member.joined`` event of the users added (``None`` if nobody
    was); ``invited``: the outcome of each guest invitation, in the order given."""

    seq: int
    item: TimelineItem | None
    invited: tuple[Invited, ...]


def email_confirmed(user: User) -> bool:
    """Whether the account proved it owns its address (the e-mail code)."""
    return user.email_confirmed


def _check_inviter(members: RoomMembers | None, by: str) -> RoomMembers:
    """The rules of ``require_admin`` plus "open", for callers without a connection."""
    if members is None or by not in members.roles:
        raise ApiError(ErrorCode.FORBIDDEN, "not a member of this room")
    if members.room.kind == "direct":
        raise ApiError(ErrorCode.FORBIDDEN, "direct rooms have exactly two members")
    if members.roles[by] not in ("owner", "admin"):
        raise ApiError(ErrorCode.FORBIDDEN, "only the room's owner or admins may do this")
    if members.room.status == "closed":
        raise ApiError(ErrorCode.FORBIDDEN, "this patient case is closed: it is read-only")
    return members


def _addresses(emails: Sequence[str]) -> list[str]:
    """Validated, normalised, without repeats (first occurrence kept)."""
    return list(dict.fromkeys(valid_email({"emails": e}, "emails") for e in emails))


async def invite_to_room(
    svc: Services[GuestPorts],
    by: str,
    room_id: str,
    users: Sequence[str] = (),
    emails: Sequence[str] = (),
) -> InviteResult:
    """Invite ``users`` (ids) and ``emails`` into ``room_id`` on behalf of ``by`` (see
    the module doc). Raises :class:`ApiError`: ``forbidden`` (not an admin, direct
    room, closed case), ``not_found`` (unknown user id), ``bad_frame`` (bad address),
    ``rate_limited`` (too many invitation e-mails)."""
    members = _check_inviter(await svc.store.room_members(room_id), by)
    addresses = _addresses(emails)
    user_ids = list(dict.fromkeys(users))
    missing = set(user_ids) - await svc.store.existing_user_ids(user_ids)
    if missing:
        raise ApiError(ErrorCode.NOT_FOUND, f"unknown user(s): {', '.join(sorted(missing))}")
    guests: list[str] = []
    for address in addresses:
        account = await svc.store.user_by_email(address)
        if account is not None and email_confirmed(account):
            user_ids.append(account.id)  # an account that proved the address: add it
        else:
            guests.append(address)
    if guests and svc.notifications is not None:  # before any write: a refusal changes nothing
        svc.notifications.invite_mails.check(by, "invitation e-mails", cost=len(guests))
    item = None
    if user_ids:
        item = await svc.store.add_members(room_id, user_ids, by, now_ms())
        if item is not None:
            users_added = tuple(item.meta.get("users", ()))
            await svc.hub.publish_item(
                room_id, encode(item_frame(item)), item.seq, join=users_added
            )
    invited: list[Invited] = []
    if guests:
        invited = await _invite_guests(svc, members, by, guests)
    seqs = [i.item.seq for i in invited if i.item is not None]
    seq = max(seqs, default=item.seq if item is not None else members.seq)
    return InviteResult(seq, item, tuple(invited))


async def _invite_guests(
    svc: Services[GuestPorts], members: RoomMembers, by: str, addresses: list[str]
) -> list[Invited]:
    inviter = await svc.store.user_by_id(by)
    name = f"{inviter.first_name} {inviter.last_name}" if inviter else "Un confrère"
    notifications = svc.notifications
    public_url = notifications.public_url if notifications is not None else ""
    policy = notifications.invitations if notifications is not None else ReminderPolicy()
    kind = _KIND_LABELS.get(members.room.kind, "une conversation")

    def notice(guest: Guest, reminder: bool) -> NewNotification:
        data: dict[str, Any] = {
            "inviter": name,
            "room_kind": kind,
            "signup_url": f"{public_url}/inscription?invitation=1&email={quote(guest.email)}",
            "expires_at": guest.expires_at,
            "reminder": reminder,
        }
        return NewNotification("email", guest.email, "guest_invitation", data)

    invited = await svc.store.invite_guests(
        members.room.id, addresses, by, now_ms(), policy, notice
    )
    for i in invited:  # members' clients start a new sender key on it (SPEC.md §11.3)
        if i.item is not None:
            await svc.hub.publish_item(members.room.id, encode(item_frame(i.item)), i.item.seq)
    if notifications is not None and any(i.notified for i in invited):
        notifications.worker.kick()
    return invited


async def on_room_uninvite(svc: Services[GuestPorts], caller: Caller, f: RoomUninvite) -> Ack:
    """Revoke a pending invitation (owner or admin); it is never promoted afterwards."""
    members = await require_admin(svc, caller, f.room)
    address = valid_email({"email": f.email})
    if await svc.store.revoke_guest(members.room.id, address, now_ms()) is None:
        raise ApiError(ErrorCode.NOT_FOUND, "no pending invitation for this address")
    return Ack(f.id, seq=members.seq)


def _webhook_notices(urls: Sequence[str], user: User) -> PromotionNotices:
    """The ``guest.promoted`` webhooks of a promotion, one per configured URL; written
    in the promotion's transaction, so a promotion that committed is always announced."""

    def notices(promotions: Sequence[Promotion]) -> list[NewNotification]:
        if not promotions:
            return []
        data = {
            "user": user.id,
            "email": user.email,
            "rooms": [
                {"room": p.room_id, "seq": p.item.seq, "invited_by": p.invited_by}
                for p in promotions
            ],
        }
        return [NewNotification("webhook", url, "guest.promoted", data) for url in urls]

    return notices


async def promote(svc: Services[GuestPorts], user: User) -> list[Promotion]:
    """Promote ``user``'s pending invitations if its address is confirmed (see the
    module doc); return the promotions made now (``[]`` when there was nothing to do)."""
    if not email_confirmed(user):
        return []
    address = normalise_email(user.email)
    # Most log-ins have nothing to promote: a read says so without taking the writer.
    if not any(g.state == "pending" for g in await svc.store.guests_by_email(address)):
        return []
    notifications = svc.notifications
    urls = notifications.webhook_urls if notifications is not None else ()
    promotions = await svc.store.promote_guest(
        address, user.id, now_ms(), _webhook_notices(urls, user)
    )
    if not promotions:
        return []
    for p in promotions:
        await svc.hub.publish_item(
            p.room_id, encode(item_frame(p.item)), p.item.seq, join=(user.id,)
        )
    if notifications is not None and urls:
        notifications.worker.kick()
    return promotions


async def promote_quietly(svc: Services[GuestPorts], user: User) -> None:
    """:func:`promote`, as the app runs it: once the address is confirmed and at every
    log-in. The request that called it has done its work (the address proven, the
    session made): a failure here is logged, not answered, and the next log-in
    promotes what is left."""
    try:
        await promote(svc, user)
    except Exception:
        log.exception("promotion of %s's invitations failed", user.id)
