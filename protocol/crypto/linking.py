"""Adding a device: the code compared on both screens, and the to-device payloads of
the approval and of the history keys (SPEC.md §11.3, §11.7).

A new device asks its user's other devices for approval with a sealed to-device
payload ``{type: "link_request"}`` (§11.3: sealed, ``from``/``to`` checked). Each of
them, and the new device itself, shows the *link code* of the new device's bundle::

    link code = first 8 bytes of BLAKE2b-256(data = "confrere/link" || 0x01 ||
                bundle payload (§11.1), personal = "confrere-link"), big-endian,
                modulo 10^12, as 12 digits in three groups of four

The practitioner compares the two screens: a key the server slipped in instead of the
new device's gives another code. (Twelve digits: forging a key of the same code takes
about 2^40 key generations, far more than the minute the two screens are open; the
bundle is fresh, so nothing can be computed in advance.)

Approving answers ``{type: "link_accept", backup?: {version: str, key: bin 32}}``
(the backup key lets the new device keep the backup up to date, §11.7), then the
history keys: ``{type: "room_keys", keys: [sender key, ...]}`` (each item is
:func:`~protocol.crypto.backup.sender_key_to_wire`: room, device, sid, ck, i, spk, the
key as first received, so every message since is readable), in as many payloads as it
takes to keep each sealed body under ``MAX_BODY``. Refusing answers
``{type: "link_refused"}``.
"""

from __future__ import annotations

from typing import Any

import msgpack
import nacl.hash
from nacl.encoding import RawEncoder

from .backup import sender_key_from_wire, sender_key_to_wire
from .errors import Truncated
from .keys import KeyBundle
from .sender_keys import SenderKey

__all__ = [
    "LINK_CODE_DIGITS",
    "MAX_KEYS_PLAINTEXT",
    "link_code",
    "room_keys_payloads",
    "room_keys_from_payload",
]

LINK_VERSION = 1
LINK_CODE_DIGITS = 12
# A sealed to-device body adds 41 bytes (version, nonce, MAC) to its plaintext and must
# stay within MAX_BODY (65 536): the keys of one payload take at most this much.
MAX_KEYS_PLAINTEXT = 60_000
MAX_KEYS_PER_PAYLOAD = 1000


def link_code(bundle: KeyBundle) -> str:
    """The 12 digits both screens show for the new device of ``bundle``: ``1234 5678 9012``."""
    digest: bytes = nacl.hash.blake2b(
        b"confrere/link" + bytes([LINK_VERSION]) + bundle.payload(),
        digest_size=32,
        person=b"confrere-link",
        encoder=RawEncoder,
    )
    digits = str(int.from_bytes(digest[:8], "big") % 10**LINK_CODE_DIGITS).zfill(LINK_CODE_DIGITS)
    return " ".join(digits[i : i + 4] for i in range(0, LINK_CODE_DIGITS, 4))


def room_keys_payloads(
    keys: list[SenderKey], sender_device: str, recipient_device: str
) -> list[dict[str, Any]]:
    """``room_keys`` payloads carrying ``keys``, each small enough for one to-device."""
    payloads: list[dict[str, Any]] = []
    batch: list[dict[str, Any]] = []
    size = 0
    for key in keys:
        wire = sender_key_to_wire(key)
        packed = len(msgpack.packb(wire, use_bin_type=True))
        if batch and (size + packed > MAX_KEYS_PLAINTEXT or len(batch) >= MAX_KEYS_PER_PAYLOAD):
            payloads.append(_payload(batch, sender_device, recipient_device))
            batch, size = [], 0
        batch.append(wire)
        size += packed
    if batch:
        payloads.append(_payload(batch, sender_device, recipient_device))
    return payloads


def _payload(batch: list[dict[str, Any]], sender: str, recipient: str) -> dict[str, Any]:
    return {"type": "room_keys", "from": sender, "to": recipient, "keys": batch}


def room_keys_from_payload(payload: dict[str, Any]) -> list[SenderKey]:
    """The sender keys of an opened ``room_keys`` payload; ``Truncated`` if malformed."""
    keys = payload.get("keys")
    if payload.get("type") != "room_keys" or not isinstance(keys, list):
        raise Truncated("not a room_keys payload")
    if len(keys) > MAX_KEYS_PER_PAYLOAD:
        raise Truncated("too many keys in one payload")
    return [sender_key_from_wire(wire) for wire in keys]
