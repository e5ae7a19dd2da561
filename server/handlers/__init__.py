"""Frame handlers: the messaging logic, separate from the socket I/O of the gateway.

Each handler takes the services, the calling connection and one parsed frame, and
returns the reply frame or raises :class:`~server.errors.ApiError`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from protocol.frames import (
    Ack,
    Batch,
    KeysQuery,
    KeysReport,
    KeysSign,
    KeysUpload,
    MsgDelete,
    Ping,
    Pong,
    Read,
    RoomCreate,
    RoomGet,
    RoomInvite,
    RoomLeave,
    RoomRemove,
    RoomRole,
    RoomSettings,
    RoomUninvite,
    RoomUpdate,
    Send,
    Sync,
    ToDevice,
    ToDeviceAck,
    Typing,
)
from storage import Store

from .context import Caller, Services
from .guests import on_room_uninvite
from .keys import on_keys_query, on_keys_report, on_keys_sign, on_keys_upload
from .messages import (
    on_msg_delete,
    on_read,
    on_send,
    on_sync,
    on_to_device,
    on_to_device_ack,
    on_typing,
)
from .rooms import (
    on_room_create,
    on_room_get,
    on_room_invite,
    on_room_leave,
    on_room_remove,
    on_room_role,
    on_room_settings,
    on_room_update,
)

__all__ = ["HANDLERS", "Caller", "Handler", "Services"]

Handler = Callable[[Services[Store], Caller, Any], Awaitable[Ack | Batch | Pong]]


async def on_ping(svc: Services[object], caller: Caller, f: Ping) -> Pong:
    return Pong(f.id)


HANDLERS: dict[type, Handler] = {
    Send: on_send,
    Sync: on_sync,
    Read: on_read,
    Typing: on_typing,
    ToDevice: on_to_device,
    ToDeviceAck: on_to_device_ack,
    MsgDelete: on_msg_delete,
    RoomCreate: on_room_create,
    RoomGet: on_room_get,
    RoomInvite: on_room_invite,
    RoomUninvite: on_room_uninvite,
    RoomLeave: on_room_leave,
    RoomRemove: on_room_remove,
    RoomUpdate: on_room_update,
    RoomRole: on_room_role,
    RoomSettings: on_room_settings,
    KeysUpload: on_keys_upload,
    KeysSign: on_keys_sign,
    KeysQuery: on_keys_query,
    KeysReport: on_keys_report,
    Ping: on_ping,
}
