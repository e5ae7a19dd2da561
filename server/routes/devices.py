"""One's devices (SPEC.md §9): list them (name, created, last seen, verified by one's
identity key), add, rename, revoke.

Only the owner acts on a device: every route looks the device up among the caller's
own, so another user's device id gets the same 404 as an unknown one. Revoking a
device (storage/devices.py) deletes its sessions, keys, push subscription and queued
to-device messages and writes a ``device.revoked`` event in each of the user's rooms;
here its live connections are closed at once on every node (4401, as a revoked
session's) and the events fanned out, so members' clients start new sender keys that
the revoked device never gets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from protocol import encode
from protocol.errors import ErrorCode
from storage.audit import AuditStore
from storage.base import KeyStore, UserStore
from storage.devices import DeviceStore
from storage.types import Device

from ..audit import record
from ..bodies import Text, schema_of
from ..clock import now_ms
from ..errors import ApiError
from ..handlers import Services
from ..node import node
from ..openapi import api_route, array, boolean, integer, nullable, obj, string
from ..revocation import revoke
from ..wire import item_frame
from .common import bearer, read_body
from .common import services as all_services

__all__ = ["routes"]

_NO_SUCH = "no device of yours has this id"


class DevicePorts(UserStore, KeyStore, DeviceStore, AuditStore, Protocol):
    """What the devices routes use of the store."""


def services(request: Request) -> Services[DevicePorts]:
    return all_services(request)


@dataclass(frozen=True, slots=True)
class DeviceBody:
    name: Annotated[str, Text()]


def _device_json(device: Device, verified: bool, current: bool) -> dict[str, Any]:
    return {
        "id": device.id,
        "name": device.name,
        "created_at": device.created_at,
        "last_seen_at": device.last_seen_at,
        "verified": verified,
        "current": current,
    }


async def list_devices(request: Request) -> Response:
    session, user = await bearer(request)
    store = services(request).store
    devices = await store.devices_of(user.id)
    # A stored signature was verified against the stored identity key on upload and is
    # dropped when either changes: its presence is the device's verified state.
    signed = {k.device_id for k in await store.device_keys([user.id]) if k.signature}
    return JSONResponse(
        {"devices": [_device_json(d, d.id in signed, d.id == session.device_id) for d in devices]}
    )


async def add_device(request: Request) -> Response:
    """Register another device; log in with its ``device_id`` to get its own token."""
    _, user = await bearer(request)
    name = (await read_body(request, DeviceBody)).name
    device = await services(request).store.create_device(user.id, name, now_ms())
    return JSONResponse({"device": _device_json(device, False, False)}, status_code=201)


async def rename_device(request: Request) -> Response:
    session, user = await bearer(request)
    name = (await read_body(request, DeviceBody)).name
    store = services(request).store
    device = await store.rename_device(user.id, request.path_params["device_id"], name)
    if device is None:
        raise ApiError(ErrorCode.NOT_FOUND, _NO_SUCH)
    signed = {k.device_id for k in await store.device_keys([user.id]) if k.signature}
    return JSONResponse(
        {"device": _device_json(device, device.id in signed, device.id == session.device_id)}
    )


async def revoke_device(request: Request) -> Response:
    session, user = await bearer(request)
    device_id = request.path_params["device_id"]
    if device_id == session.device_id:
        raise ApiError(ErrorCode.CONFLICT, "this is the device you are using: log out instead")
    svc = services(request)
    revoked = await svc.store.revoke_device(user.id, device_id, now_ms())
    if revoked is None:
        raise ApiError(ErrorCode.NOT_FOUND, _NO_SUCH)
    live = node(request).live
    for token_hash in revoked.sessions:
        await revoke(svc.hub.broker, live, user.id, "session", token_hash)
    for item in revoked.events:
        await svc.hub.publish_item(item.room_id, encode(item_frame(item)), item.seq)
    await record(svc.store, "device.revoked", user.id, device_id)
    return JSONResponse({"revoked": device_id, "rooms": len(revoked.events)})


_DEVICE = obj(
    {
        "id": string(),
        "name": string(),
        "created_at": integer(),
        "last_seen_at": nullable(integer()),
        "verified": boolean(),
        "current": boolean(),
    }
)

routes = [
    api_route(
        "/v1/devices",
        list_devices,
        summary="The caller's devices (last seen, verified by the identity key)",
        response=obj({"devices": array(_DEVICE)}),
    ),
    api_route(
        "/v1/devices",
        add_device,
        "POST",
        summary="Register another device",
        body=schema_of(DeviceBody),
        response=obj({"device": _DEVICE}),
        status=201,
        errors=(413,),
    ),
    api_route(
        "/v1/devices/{device_id}",
        rename_device,
        "PATCH",
        summary="Rename one of one's devices",
        body=schema_of(DeviceBody),
        response=obj({"device": _DEVICE}),
        errors=(404, 413),
    ),
    api_route(
        "/v1/devices/{device_id}",
        revoke_device,
        "DELETE",
        summary="Revoke one of one's other devices: its connections close, its keys leave "
        "the key directory, its rooms get a device.revoked event",
        response=obj({"revoked": string(), "rooms": integer()}),
        errors=(404, 409),
    ),
]
