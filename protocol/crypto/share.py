"""To-device payloads sealed with ``nacl.public.Box``, and sender-key shares in them.

A to-device body (the ``body`` of a ``to_device`` frame) is::

    version 0x01 || nonce (24) || XSalsa20-Poly1305 box (sender X25519 secret,
                                                         recipient X25519 public)

Its plaintext is a msgpack map with at least ``type`` (str), ``from`` and ``to`` (the
sender's and recipient's device ids, so a payload cannot be replayed to another
device). Type ``sender_key`` adds ``room`` (str), ``sid`` (bin 16), ``ck`` (bin 32),
``i`` (int) and ``spk`` (bin 32: the sender device's Ed25519 key, which must match its
published bundle). The box authenticates the sender's X25519 key, which the receiver
takes from the sender's verified bundle (:func:`protocol.crypto.keys.parse_bundle`).

The one clear to-device body is the *key request* the server queues for a sender
device when a member reports a message it could not decrypt (``keys.report``)::

    0x00 || msgpack map {type: "key_request", room: str, sid: bin 16 (optional)}

It carries nothing secret and proves nothing: a sender answers it only by sharing its
key again with a device it had already shared that key with.
"""

from __future__ import annotations

from typing import Any

import msgpack
import nacl.exceptions
import nacl.utils
from nacl.public import Box, PublicKey

from .errors import BadSignature, BadVersion, Tampered, Truncated
from .keys import DeviceKeys, KeyBundle, check_key
from .sender_keys import SenderKey

__all__ = [
    "KEY_REQUEST_VERSION",
    "SEALED_VERSION",
    "key_request",
    "open_sealed",
    "open_sender_key",
    "parse_key_request",
    "seal",
    "sender_key_payload",
    "share_sender_key",
    "to_device_problem",
]

SEALED_VERSION = 1
KEY_REQUEST_VERSION = 0  # clear: queued by the server, which holds no key
_NONCE = 24
_MAC = 16


def to_device_problem(data: bytes) -> str | None:
    """Why ``data`` is not a sealed to-device body (SPEC.md §11.3), or None if it has the
    shape of one: what a client may send. (The clear key request is queued by the
    server itself, never accepted from a client.)"""
    if not data:
        return "empty to-device payload"
    if data[0] != SEALED_VERSION:
        return f"unknown to-device payload version {data[0]}"
    if len(data) < 1 + _NONCE + _MAC:
        return "to-device payload too short"
    return None


def seal(
    sender: DeviceKeys,
    recipient_box_public: bytes,
    payload: dict[str, Any],
    *,
    nonce: bytes | None = None,
) -> bytes:
    """Encrypt a payload map for one device. ``nonce``: for test vectors only."""
    check_key(recipient_box_public, "X25519 public key")
    nonce = check_key(nonce or nacl.utils.random(_NONCE), "nonce", _NONCE)
    box = Box(sender.box, PublicKey(recipient_box_public))
    plaintext: bytes = msgpack.packb(payload, use_bin_type=True)
    return bytes([SEALED_VERSION]) + nonce + box.encrypt(plaintext, nonce).ciphertext


def open_sealed(
    recipient: DeviceKeys, recipient_device: str, sender: KeyBundle, data: bytes
) -> dict[str, Any]:
    """Decrypt a to-device body from the device of the (verified) bundle ``sender``.

    Raises ``BadVersion``, ``Truncated``, ``Tampered`` (not from that device's key), or
    ``BadSignature`` if the payload names other devices than the box's two ends."""
    if not isinstance(data, bytes) or not data:
        raise Truncated("empty to-device payload")
    if data[0] != SEALED_VERSION:
        raise BadVersion(f"unknown to-device payload version {data[0]}")
    if len(data) < 1 + _NONCE + _MAC:
        raise Truncated("to-device payload too short")
    box = Box(recipient.box, PublicKey(sender.box_public))
    try:
        plaintext = box.decrypt(data[1 + _NONCE :], data[1 : 1 + _NONCE])
    except nacl.exceptions.CryptoError:
        raise Tampered("to-device payload does not authenticate") from None
    try:
        payload: Any = msgpack.unpackb(plaintext, raw=False)
    except (ValueError, msgpack.UnpackException, TypeError):
        raise Truncated("to-device payload is not a msgpack map") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
        raise Truncated("to-device payload is not a typed map")
    if payload.get("from") != sender.device_id or payload.get("to") != recipient_device:
        raise BadSignature("to-device payload names other devices than its sender/recipient")
    return payload


def sender_key_payload(key: SenderKey, recipient_device: str) -> dict[str, Any]:
    return {
        "type": "sender_key",
        "from": key.device_id,
        "to": recipient_device,
        "room": key.room_id,
        "sid": key.session_id,
        "ck": key.chain_key,
        "i": key.index,
        "spk": key.sign_public,
    }


def share_sender_key(
    sender: DeviceKeys,
    key: SenderKey,
    recipient_device: str,
    recipient_box_public: bytes,
    *,
    nonce: bytes | None = None,
) -> bytes:
    """The to-device body that gives ``key`` to one device."""
    return seal(
        sender, recipient_box_public, sender_key_payload(key, recipient_device), nonce=nonce
    )


def open_sender_key(payload: dict[str, Any], sender: KeyBundle) -> SenderKey:
    """The sender key in an opened ``sender_key`` payload (:func:`open_sealed`) from the
    device of ``sender``; ``BadSignature`` if it names another signing key."""
    if payload.get("type") != "sender_key":
        raise Truncated(f"not a sender key payload: {str(payload.get('type'))[:40]}")
    room, sid, ck, index, spk = (payload.get(k) for k in ("room", "sid", "ck", "i", "spk"))
    if not isinstance(room, str) or not room:
        raise Truncated("sender key payload: 'room' must be a string")
    if not isinstance(index, int) or isinstance(index, bool):
        raise Truncated("sender key payload: 'i' must be an integer")
    if spk != sender.sign_public:
        raise BadSignature("sender key signed by another key than the device's published one")
    return SenderKey(
        room,
        sender.device_id,
        check_key(sid, "session id", 16),
        check_key(ck, "chain key"),
        index,
        sender.sign_public,
    )


def key_request(room_id: str, session_id: bytes | None) -> bytes:
    """The clear to-device body asking a sender device to share its key again."""
    payload: dict[str, Any] = {"type": "key_request", "room": room_id}
    if session_id is not None:
        payload["sid"] = session_id
    packed: bytes = msgpack.packb(payload, use_bin_type=True)
    return bytes([KEY_REQUEST_VERSION]) + packed


def parse_key_request(data: bytes) -> tuple[str, bytes | None]:
    """``(room id, session id or None)`` of a key request; ``Truncated`` if it is not one."""
    if not data or data[0] != KEY_REQUEST_VERSION:
        raise BadVersion("not a key request")
    try:
        payload: Any = msgpack.unpackb(data[1:], raw=False)
    except (ValueError, msgpack.UnpackException, TypeError):
        raise Truncated("key request is not msgpack") from None
    if not isinstance(payload, dict) or payload.get("type") != "key_request":
        raise Truncated("not a key request")
    room, sid = payload.get("room"), payload.get("sid")
    if not isinstance(room, str) or not (sid is None or isinstance(sid, bytes)):
        raise Truncated("malformed key request")
    return room, sid
