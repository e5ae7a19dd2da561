"""Records the store reads and writes. Plain frozen dataclasses; no behaviour."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "AppendResult",
    "Device",
    "Membership",
    "NewMessage",
    "NewUser",
    "Room",
    "RoomMembers",
    "Session",
    "TimelineItem",
    "ToDeviceItem",
    "User",
]


@dataclass(frozen=True, slots=True)
class NewUser:
    email: str  # normalised (trimmed, lower-case) by the caller
    password_hash: str
    first_name: str
    last_name: str
    postcode: str
    city: str
    specialty: str
    practice_mode: str  # "liberal" | "salarie"
    rpps: str | None = None


@dataclass(frozen=True, slots=True)
class User:
    id: str
    email: str
    password_hash: str
    first_name: str
    last_name: str
    postcode: str
    city: str
    specialty: str
    practice_mode: str
    rpps: str | None
    verified: bool
    created_at: int


@dataclass(frozen=True, slots=True)
class Device:
    id: str
    user_id: str
    name: str
    created_at: int


@dataclass(frozen=True, slots=True)
class Session:
    token_hash: bytes
    user_id: str
    device_id: str
    created_at: int
    expires_at: int


@dataclass(frozen=True, slots=True)
class Room:
    id: str
    kind: str  # "direct" | "group" | "patient_case"
    name: str | None
    status: str  # "open" | "closed"
    header: bytes | None
    created_by: str
    created_at: int
    last_seq: int


@dataclass(frozen=True, slots=True)
class Membership:
    room_id: str
    user_id: str
    role: str  # "owner" | "admin" | "member"
    joined_seq: int
    read_seq: int


@dataclass(frozen=True, slots=True)
class RoomMembers:
    """A room's members with their roles, as of timeline position ``seq``."""

    room: Room
    roles: dict[str, str]
    seq: int


@dataclass(frozen=True, slots=True)
class TimelineItem:
    """One entry of a room's timeline: a message (kind "msg") or a room event.

    Messages carry ``sender``/``device``/``cid``/``body``; events carry ``meta``
    (users, by, role, name, status, header, reason: whatever the kind needs).
    """

    room_id: str
    seq: int
    kind: str
    ts: int
    sender: str | None = None
    device: str | None = None
    cid: str | None = None
    body: bytes | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NewMessage:
    room_id: str
    sender: str
    device: str
    cid: str
    body: bytes
    ts: int


@dataclass(frozen=True, slots=True)
class AppendResult:
    """Outcome of one append: the stored item, or why nothing was stored.

    ``duplicate`` is true when ``(device, cid)`` was already stored: ``item`` is then the
    original. ``refused`` is "not_member", "closed" or "cid_reused" (same cid, another
    room) when nothing was stored.
    """

    item: TimelineItem | None
    duplicate: bool = False
    refused: str | None = None


@dataclass(frozen=True, slots=True)
class ToDeviceItem:
    tid: int
    device_id: str
    sender_user: str
    sender_device: str
    ts: int
    body: bytes
