"""What every frame handler receives: the services, and checks they share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from protocol.errors import ErrorCode
from storage import GroupCommit
from storage.base import RoomStore
from storage.blobs import BlobStore
from storage.types import AppendResult, NewMessage, ReadMark, ReadResult, RoomMembers

from ..errors import ApiError
from ..hub import Hub
from ..last_seen import LastSeen
from ..notifications import Notifications
from ..receipts import ReceiptAnnouncer
from ..server_key import ServerKey

__all__ = ["Caller", "Services", "require_admin", "require_member"]


class Caller(Protocol):
    """The authenticated connection a frame came from."""

    user_id: str
    device_id: str
    rooms: set[str]

    @property
    def verified(self) -> bool: ...


# The store ports a consumer uses: each module names them (``Services[RoomStore]``, or a
# protocol joining a few ports), so mypy holds it to those methods. Covariant: the
# composition root's ``Services[Store]`` is every narrower ``Services[...]``.
S_co = TypeVar("S_co", covariant=True)


@dataclass(frozen=True, slots=True)
class Services(Generic[S_co]):
    store: S_co
    hub: Hub
    # Sends: (message, mentioned user ids) -> stored, then fanned out (messages.py).
    committer: GroupCommit[tuple[NewMessage, tuple[str, ...]], AppendResult]
    receipts: GroupCommit[ReadMark, ReadResult]  # read markers
    announcer: ReceiptAnnouncer  # what receipts raised, told to the rooms
    blobs: BlobStore
    server_key: ServerKey
    last_seen: LastSeen
    # Outbox worker, offline push, webhook URLs (None: nothing is delivered or pushed).
    notifications: Notifications | None = None


async def require_member(svc: Services[RoomStore], caller: Caller, room_id: str) -> None:
    """Refuse unless the caller is a member. From memory when the connection is attached
    to the room (the hot path); otherwise the database decides, and a member whose
    attachment has not arrived yet (added on another node a moment ago) is attached."""
    if room_id in caller.rooms:
        return
    if await svc.store.membership(room_id, caller.user_id) is None:
        raise ApiError(ErrorCode.FORBIDDEN, "not a member of this room")
    if hasattr(caller, "push"):
        await svc.hub.attach(caller, room_id)  # type: ignore[arg-type]


async def require_admin(svc: Services[RoomStore], caller: Caller, room_id: str) -> RoomMembers:
    """Refuse unless the caller is the room's owner or an admin; return its members."""
    members = await svc.store.room_members(room_id)
    if members is None or caller.user_id not in members.roles:
        raise ApiError(ErrorCode.FORBIDDEN, "not a member of this room")
    if members.room.kind == "direct":
        raise ApiError(ErrorCode.FORBIDDEN, "direct rooms have exactly two members")
    if members.roles[caller.user_id] not in ("owner", "admin"):
        raise ApiError(ErrorCode.FORBIDDEN, "only the room's owner or admins may do this")
    return members
