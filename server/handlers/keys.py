"""Handlers of the key directory (keys.upload, keys.query) and of decryption-failure
reports (keys.report).

The server checks what it can without holding a key: a bundle must parse, its Ed25519
signature must verify, and it must name the calling user and device; otherwise it is
refused with ``bad_frame`` (or ``forbidden``) and nothing is stored. Clients verify
bundles again when they read them: the server is not trusted with their integrity.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from protocol import encode
from protocol.crypto.errors import CryptoError
from protocol.crypto.keys import parse_bundle
from protocol.crypto.share import key_request
from protocol.errors import ErrorCode
from protocol.frames import Ack, KeysQuery, KeysReport, KeysUpload, ToDeviceMsg
from storage.base import KeyStore, RoomStore, ToDeviceStore, UserStore
from storage.errors import NotFound

from ..clock import now_ms
from ..errors import ApiError
from .context import Caller, Services, require_member

__all__ = ["on_keys_query", "on_keys_report", "on_keys_upload"]


class KeyPorts(UserStore, KeyStore, RoomStore, ToDeviceStore, Protocol):
    """What keys uses of the store."""


async def on_keys_upload(svc: Services[KeyPorts], caller: Caller, f: KeysUpload) -> Ack:
    try:
        bundle = parse_bundle(f.bundle)
    except CryptoError as exc:
        raise ApiError(ErrorCode.BAD_FRAME, f"keys.upload: invalid bundle: {exc}") from None
    if bundle.user_id != caller.user_id or bundle.device_id != caller.device_id:
        raise ApiError(ErrorCode.FORBIDDEN, "keys.upload: the bundle is not this device's")
    try:
        await svc.store.put_device_keys(caller.user_id, caller.device_id, f.bundle, now_ms())
    except NotFound:
        raise ApiError(ErrorCode.NOT_FOUND, "keys.upload: this device no longer exists") from None
    return Ack(f.id)


async def on_keys_query(svc: Services[KeyPorts], caller: Caller, f: KeysQuery) -> Ack:
    """Bundles of the devices of the requested users the caller may see: itself and the
    users it shares a room with. Others are left out, as if they had no device."""
    users = list(dict.fromkeys(f.users))
    shared = await asyncio.gather(
        *(svc.store.share_room(caller.user_id, u) for u in users if u != caller.user_id)
    )
    others = [u for u in users if u != caller.user_id]
    allowed = [u for u, ok in zip(others, shared, strict=True) if ok]
    if caller.user_id in users:
        allowed.append(caller.user_id)
    found = await svc.store.device_keys(allowed) if allowed else []
    return Ack(f.id, keys=tuple(k.bundle for k in found))


async def on_keys_report(svc: Services[KeyPorts], caller: Caller, f: KeysReport) -> Ack:
    """Count a failure to decrypt a message of ``f.device``; for a missing key, queue a
    key request (a clear to-device body, from the caller) to that device."""
    await require_member(svc, caller, f.room)
    target = await svc.store.device(f.device)
    if target is None or await svc.store.membership(f.room, target.user_id) is None:
        raise ApiError(ErrorCode.NOT_FOUND, "keys.report: no such device among the members")
    ts = now_ms()
    count = await svc.store.count_decryption_failure(f.room, f.device, f.reason, ts)
    if f.reason == "unknown_session" and f.device != caller.device_id:
        body = key_request(f.room, f.session)
        tid = await svc.store.push_to_device(f.device, caller.user_id, caller.device_id, body, ts)
        frame = ToDeviceMsg(tid, caller.user_id, caller.device_id, ts, body)
        await svc.hub.publish_to_device(target.user_id, f.device, encode(frame))
    return Ack(f.id, seq=count)
