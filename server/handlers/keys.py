"""Handlers of the key directory (keys.upload, keys.sign, keys.query) and of
decryption-failure reports (keys.report).

The server checks what it can without holding a key: a bundle must parse, its Ed25519
signature must verify, and it must name the calling user and device; an identity record
must verify and name the calling user; a device signature must verify against the
user's identity key and the device's bundle. Otherwise the request is refused with
``bad_frame`` (or ``forbidden``) and nothing is stored. Clients verify all of it again
when they read it: the server is not trusted with their integrity.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol, TypeVar

from protocol import encode
from protocol.crypto.errors import CryptoError
from protocol.crypto.identity import (
    DeviceSignature,
    IdentityRecord,
    parse_device_signature,
    parse_identity,
    verify_device,
)
from protocol.crypto.keys import KeyBundle, parse_bundle
from protocol.crypto.share import key_request
from protocol.errors import ErrorCode
from protocol.frames import Ack, KeysQuery, KeysReport, KeysSign, KeysUpload, ToDeviceMsg
from storage.base import KeyStore, RoomStore, ToDeviceStore, UserStore
from storage.devices import DeviceStore
from storage.errors import NotFound

from ..clock import now_ms
from ..errors import ApiError
from .context import Caller, Services, require_member

__all__ = ["on_keys_query", "on_keys_report", "on_keys_sign", "on_keys_upload"]

T = TypeVar("T")


class KeyPorts(UserStore, KeyStore, DeviceStore, RoomStore, ToDeviceStore, Protocol):
    """What keys uses of the store."""


def _parse(frame: str, what: str, parse: Callable[[bytes], T], data: bytes) -> T:
    try:
        return parse(data)
    except CryptoError as exc:
        raise ApiError(ErrorCode.BAD_FRAME, f"{frame}: invalid {what}: {exc}") from None


def _check_signature(
    frame: str, identity: IdentityRecord, bundle: KeyBundle, signature: DeviceSignature
) -> None:
    if signature.user_id != bundle.user_id or signature.device_id != bundle.device_id:
        raise ApiError(ErrorCode.FORBIDDEN, f"{frame}: the signature names another device")
    try:
        verify_device(identity, bundle, signature)
    except CryptoError as exc:
        raise ApiError(ErrorCode.BAD_FRAME, f"{frame}: invalid device signature: {exc}") from None


async def _stored_identity(svc: Services[KeyPorts], user_id: str) -> IdentityRecord | None:
    found = await svc.store.identities([user_id])
    # Verified on upload; parsed again because the record is what holds the key.
    return parse_identity(found[0].record) if found else None


async def on_keys_upload(svc: Services[KeyPorts], caller: Caller, f: KeysUpload) -> Ack:
    bundle: KeyBundle = _parse("keys.upload", "bundle", parse_bundle, f.bundle)
    identity: IdentityRecord | None = None
    if f.identity is not None:
        identity = _parse("keys.upload", "identity record", parse_identity, f.identity)
    signature: DeviceSignature | None = None
    if f.signature is not None:
        signature = _parse("keys.upload", "device signature", parse_device_signature, f.signature)
    if signature is not None and identity is None:
        identity = await _stored_identity(svc, caller.user_id)
        if identity is None:
            raise ApiError(ErrorCode.BAD_FRAME, "keys.upload: a signature needs an identity key")
    if bundle.user_id != caller.user_id or bundle.device_id != caller.device_id:
        raise ApiError(ErrorCode.FORBIDDEN, "keys.upload: the bundle is not this device's")
    if identity is not None and identity.user_id != caller.user_id:
        raise ApiError(ErrorCode.FORBIDDEN, "keys.upload: the identity is another user's")
    if signature is not None and identity is not None:
        _check_signature("keys.upload", identity, bundle, signature)
    ts = now_ms()
    if f.identity is not None and await svc.store.device(caller.device_id) is None:
        raise ApiError(ErrorCode.NOT_FOUND, "keys.upload: this device no longer exists")
    if f.identity is not None and not await svc.store.put_identity(
        caller.user_id, f.identity, ts, reset=f.reset
    ):
        raise ApiError(
            ErrorCode.CONFLICT, "keys.upload: this user has another identity key (reset to replace)"
        )
    try:
        await svc.store.put_device_keys(caller.user_id, caller.device_id, f.bundle, ts, f.signature)
    except NotFound:
        raise ApiError(ErrorCode.NOT_FOUND, "keys.upload: this device no longer exists") from None
    return Ack(f.id)


async def on_keys_sign(svc: Services[KeyPorts], caller: Caller, f: KeysSign) -> Ack:
    """The user's identity signs another of the user's devices (its approval)."""
    signature: DeviceSignature = _parse(
        "keys.sign", "device signature", parse_device_signature, f.signature
    )
    if signature.user_id != caller.user_id or signature.device_id != f.device:
        raise ApiError(ErrorCode.FORBIDDEN, "keys.sign: the signature names another device")
    target = await svc.store.device(f.device)
    if target is not None and target.user_id != caller.user_id:
        raise ApiError(ErrorCode.FORBIDDEN, "keys.sign: that device is another user's")
    stored = [k for k in await svc.store.device_keys([caller.user_id]) if k.device_id == f.device]
    identity = await _stored_identity(svc, caller.user_id)
    if target is None or not stored or identity is None:
        raise ApiError(
            ErrorCode.NOT_FOUND, "keys.sign: no such device with published keys, or no identity"
        )
    bundle = parse_bundle(stored[0].bundle)
    _check_signature("keys.sign", identity, bundle, signature)
    if not await svc.store.sign_device(
        caller.user_id, f.device, stored[0].bundle, f.signature, now_ms()
    ):
        raise ApiError(ErrorCode.NOT_FOUND, "keys.sign: the device published other keys meanwhile")
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
    if not allowed:
        return Ack(f.id, keys=(), identities=(), signatures=())
    found, identities = await asyncio.gather(
        svc.store.device_keys(allowed), svc.store.identities(allowed)
    )
    return Ack(
        f.id,
        keys=tuple(k.bundle for k in found),
        identities=tuple(i.record for i in identities),
        signatures=tuple(k.signature for k in found if k.signature is not None),
    )


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
