"""Conversions from stored records to protocol frames."""

from __future__ import annotations

import base64

from protocol.frames import Event, Member, Msg, RoomInfo
from storage.types import Membership, Room, RoomMembers, TimelineItem

__all__ = ["item_frame", "room_info", "sealed_json"]


def sealed_json(value: bytes | None) -> str | None:
    """A room's encrypted name in a JSON body (REST): base64."""
    return None if value is None else base64.b64encode(value).decode("ascii")


def _bytes(value: object) -> bytes | None:
    """An encrypted name; a name stored in clear before names were encrypted (in an old
    room.updated event) is not passed on."""
    return value if isinstance(value, bytes) else None


def item_frame(item: TimelineItem) -> Msg | Event:
    """The frame a client receives for one timeline item (live or in a sync batch)."""
    if item.kind == "msg":
        assert item.sender and item.device and item.cid
        return Msg(
            item.room_id,
            item.seq,
            item.sender,
            item.device,
            item.cid,
            item.ts,
            item.body,
            item.edits,
            item.deleted_by,
            item.deleted_at,
        )
    meta = item.meta
    users = meta.get("users")
    return Event(
        kind=item.kind,
        room=item.room_id,
        seq=item.seq,
        ts=item.ts,
        user=meta.get("user"),
        users=tuple(users) if users is not None else None,
        by=meta.get("by"),
        role=meta.get("role"),
        upto=meta.get("upto"),
        name=_bytes(meta.get("name")),
        status=meta.get("status"),
        header=meta.get("header"),
        reason=meta.get("reason"),
        device=meta.get("device"),
        target=meta.get("target"),
    )


def room_info(
    room: Room,
    membership: Membership,
    members: RoomMembers | None = None,
    online: set[str] | None = None,
) -> RoomInfo:
    return RoomInfo(
        id=room.id,
        kind=room.kind,
        status=room.status,
        role=membership.role,
        last_seq=room.last_seq,
        read_seq=membership.read_seq,
        notify=membership.notify,
        archived=membership.archived,
        pinned=membership.pinned,
        unread=membership.unread,
        name=_bytes(room.name),
        header=room.header,
        members=None
        if members is None
        else tuple(
            Member(u, r, None if online is None else u in online)
            for u, r in sorted(members.roles.items())
        ),
    )
