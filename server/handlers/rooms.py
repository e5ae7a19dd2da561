"""Handlers of the room frames: create, get, invite, leave, remove, update, role.

Rules (also in SPEC.md): a direct room has exactly two members, is created once per
pair and cannot be left or changed; in groups and patient cases the owner and admins
add and remove members, rename, and (patient cases) replace the encrypted header and
open or close the case; only the owner names admins or hands ownership over; the owner
leaves only once nobody else is left or ownership was handed over. A closed case is
read-only: no message, no new member. Invitations by e-mail (guests) and their
revocation (room.uninvite) live in :mod:`.guests`; room.get lists pending ones.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

from protocol import encode
from protocol.errors import ErrorCode
from protocol.frames import (
    Ack,
    Event,
    Invitation,
    RoomCreate,
    RoomGet,
    RoomInvite,
    RoomLeave,
    RoomRemove,
    RoomRole,
    RoomSettings,
    RoomUpdate,
)
from storage.types import Membership, TimelineItem

from ..clock import now_ms
from ..errors import ApiError
from ..presence import PresenceUnavailable
from ..wire import item_frame, room_info
from .context import Caller, Services, require_admin, require_member
from .guests import GuestPorts, invite_to_room

__all__ = [
    "on_room_create",
    "on_room_get",
    "on_room_invite",
    "on_room_leave",
    "on_room_remove",
    "on_room_role",
    "on_room_settings",
    "on_room_update",
]


class RoomPorts(GuestPorts, Protocol):
    """What rooms uses of the store."""


async def _require_users(svc: Services[RoomPorts], users: tuple[str, ...]) -> None:
    missing = set(users) - await svc.store.existing_user_ids(users)
    if missing:
        raise ApiError(ErrorCode.NOT_FOUND, f"unknown user(s): {', '.join(sorted(missing))}")


async def _publish(svc: Services[RoomPorts], item: TimelineItem) -> None:
    users = item.meta.get("users") if item.kind == "member.joined" else None
    await svc.hub.publish_item(
        item.room_id,
        encode(item_frame(item)),
        item.seq,
        join=tuple(users) if users else None,
        leave=item.meta.get("user") if item.kind == "member.left" else None,
    )


async def on_room_create(svc: Services[RoomPorts], caller: Caller, f: RoomCreate) -> Ack:
    others = tuple(dict.fromkeys(u for u in f.members if u != caller.user_id))
    if f.kind == "direct" and len(others) != 1:
        raise ApiError(
            ErrorCode.BAD_FRAME, "room.create: a direct room takes exactly one other member"
        )
    await _require_users(svc, others)
    # A pair's direct room created concurrently comes back from the store as the
    # existing one (storage/base.py: at most one direct room per pair).
    # No name nor header yet: clients encrypt them for the room, once it exists.
    room, item = await svc.store.create_room(f.kind, caller.user_id, others, None, None, now_ms())
    if item is not None:
        await _publish(svc, item)
    await require_member(svc, caller, room.id)
    return await _room_ack(svc, caller, f.id, room.id)


async def _room_ack(svc: Services[RoomPorts], caller: Caller, re: int, room_id: str) -> Ack:
    members = await svc.store.room_members(room_id)
    if members is None or caller.user_id not in members.roles:
        raise ApiError(ErrorCode.FORBIDDEN, "not a member of this room")
    me = Membership(room_id, caller.user_id, members.roles[caller.user_id], 0, 0)
    read = await svc.store.membership(room_id, caller.user_id)
    try:
        online = await svc.hub.presence.online(list(members.roles))
    except PresenceUnavailable:  # Redis down: nobody is shown online meanwhile
        online = set()
    info = room_info(members.room, read or me, members, online)
    guests = await svc.store.pending_guests(room_id, now_ms())
    if guests:
        invited = tuple(
            Invitation(g.email, g.invited_by, g.invited_at, g.expires_at) for g in guests
        )
        info = replace(info, invited=invited)
    return Ack(re, room=info)


async def on_room_get(svc: Services[RoomPorts], caller: Caller, f: RoomGet) -> Ack:
    await require_member(svc, caller, f.room)
    return await _room_ack(svc, caller, f.id, f.room)


async def on_room_invite(svc: Services[RoomPorts], caller: Caller, f: RoomInvite) -> Ack:
    """Users by id, and guests by e-mail address (server/handlers/guests.py)."""
    result = await invite_to_room(svc, caller.user_id, f.room, f.users, f.emails)
    return Ack(f.id, seq=result.seq)


async def on_room_leave(svc: Services[RoomPorts], caller: Caller, f: RoomLeave) -> Ack:
    members = await svc.store.room_members(f.room)
    if members is None or caller.user_id not in members.roles:
        raise ApiError(ErrorCode.FORBIDDEN, "not a member of this room")
    if members.room.kind == "direct":
        raise ApiError(ErrorCode.FORBIDDEN, "a direct room cannot be left")
    if members.roles[caller.user_id] == "owner" and len(members.roles) > 1:
        raise ApiError(ErrorCode.CONFLICT, "hand ownership over (room.role) before leaving")
    item = await svc.store.remove_member(f.room, caller.user_id, caller.user_id, "left", now_ms())
    if item is None:
        raise ApiError(ErrorCode.FORBIDDEN, "not a member of this room")
    await _publish(svc, item)
    return Ack(f.id, seq=item.seq)


async def on_room_remove(svc: Services[RoomPorts], caller: Caller, f: RoomRemove) -> Ack:
    members = await require_admin(svc, caller, f.room)
    role = members.roles.get(f.user)
    if role is None:
        raise ApiError(ErrorCode.NOT_FOUND, "this user is not a member of the room")
    if f.user == caller.user_id:
        raise ApiError(ErrorCode.BAD_FRAME, "room.remove: use room.leave to leave a room")
    if role == "owner" or (role == "admin" and members.roles[caller.user_id] != "owner"):
        raise ApiError(
            ErrorCode.FORBIDDEN, "only the owner removes an admin; nobody removes the owner"
        )
    item = await svc.store.remove_member(f.room, f.user, caller.user_id, "removed", now_ms())
    if item is None:
        raise ApiError(ErrorCode.NOT_FOUND, "this user is not a member of the room")
    await _publish(svc, item)
    return Ack(f.id, seq=item.seq)


async def on_room_update(svc: Services[RoomPorts], caller: Caller, f: RoomUpdate) -> Ack:
    members = await require_admin(svc, caller, f.room)
    if f.name is None and f.header is None and f.status is None:
        raise ApiError(ErrorCode.BAD_FRAME, "room.update: nothing to update")
    if members.room.kind != "patient_case" and (f.header is not None or f.status is not None):
        raise ApiError(
            ErrorCode.BAD_FRAME, "room.update: header and status belong to patient cases"
        )
    if members.room.kind == "direct" and f.name is not None:
        raise ApiError(ErrorCode.BAD_FRAME, "room.update: a direct room has no name")
    if members.room.status == "closed" and f.status != "open":
        raise ApiError(ErrorCode.FORBIDDEN, "this patient case is closed: reopen it first")
    item = await svc.store.update_room(
        f.room, caller.user_id, now_ms(), name=f.name, header=f.header, status=f.status
    )
    await _publish(svc, item)
    return Ack(f.id, seq=item.seq)


async def on_room_role(svc: Services[RoomPorts], caller: Caller, f: RoomRole) -> Ack:
    members = await require_admin(svc, caller, f.room)
    if members.roles[caller.user_id] != "owner":
        raise ApiError(ErrorCode.FORBIDDEN, "only the owner changes roles")
    if f.user not in members.roles:
        raise ApiError(ErrorCode.NOT_FOUND, "this user is not a member of the room")
    if f.user == caller.user_id:
        raise ApiError(
            ErrorCode.BAD_FRAME, "room.role: the owner's role changes by handing ownership over"
        )
    item = await svc.store.set_role(f.room, f.user, f.role, caller.user_id, now_ms())
    if item is None:
        raise ApiError(ErrorCode.NOT_FOUND, "this user is not a member of the room")
    await _publish(svc, item)
    return Ack(f.id, seq=item.seq)


async def on_room_settings(svc: Services[RoomPorts], caller: Caller, f: RoomSettings) -> Ack:
    """The caller's own settings of a room (SPEC.md §4.21); its other devices get them
    at once, as an ``event{kind: room.settings}`` (later ones in ``welcome``)."""
    mine = await svc.store.set_room_settings(
        f.room,
        caller.user_id,
        notify=f.notify,
        archived=f.archived,
        pinned=f.pinned,
        unread=f.unread,
    )
    room = None if mine is None else await svc.store.room(f.room)
    if mine is None or room is None:
        raise ApiError(ErrorCode.FORBIDDEN, "not a member of this room")
    frame = encode(
        Event(
            kind="room.settings",
            room=f.room,
            ts=now_ms(),
            notify=mine.notify,
            archived=mine.archived,
            pinned=mine.pinned,
            unread=mine.unread,
        )
    )
    for device in await svc.store.devices_of(caller.user_id):
        if device.id != caller.device_id:
            await svc.hub.publish_to_device(caller.user_id, device.id, frame)
    return Ack(f.id, room=room_info(room, mine))
