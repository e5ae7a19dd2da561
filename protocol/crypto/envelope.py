"""The shape of end-to-end ciphertexts (SPEC.md §11.2, §11.4), checked without any key.

The server cannot decrypt what clients send, but it refuses what is not even in the
end-to-end format (a plain-text body, a header typed in clear): no client, old or
buggy, can leave readable text where the protocol promises ciphertext. Clients read
case headers with the same functions.

A patient-case header (§11.4)::

    header = version 0x01 || len16(sender device id) || room message (§11.2)
"""

from __future__ import annotations

from .errors import BadVersion, CryptoError, Truncated
from .sender_keys import parse_message

__all__ = [
    "HEADER_VERSION",
    "header_problem",
    "message_problem",
    "parse_header",
    "wrap_header",
]

HEADER_VERSION = 1
_MAX_DEVICE = 256  # bytes of a device id (ids are at most 64 characters, SPEC.md §4)


def wrap_header(device_id: str, message: bytes) -> bytes:
    """A header from the room message (§11.2) that carries it, and its sender device."""
    device = device_id.encode()
    return bytes([HEADER_VERSION]) + len(device).to_bytes(2, "big") + device + message


def parse_header(blob: bytes) -> tuple[str, bytes]:
    """``(sender device id, room message)``; raises ``BadVersion`` or ``Truncated``
    (the message is checked for its shape too, see :func:`message_problem`)."""
    if not isinstance(blob, bytes) or len(blob) < 3:
        raise Truncated("not an encrypted header")
    if blob[0] != HEADER_VERSION:
        raise BadVersion(f"unknown header version {blob[0]}")
    size = int.from_bytes(blob[1:3], "big")
    if not 0 < size <= _MAX_DEVICE or len(blob) < 3 + size:
        raise Truncated("header's device id is empty, too long or cut")
    try:
        device = blob[3 : 3 + size].decode("utf-8")
    except UnicodeDecodeError:
        raise Truncated("header's device id is not UTF-8") from None
    message = blob[3 + size :]
    parse_message(message)
    return device, message


def message_problem(data: bytes) -> str | None:
    """Why ``data`` is not a room message (§11.2), or None if it has the shape of one."""
    try:
        parse_message(data)
    except CryptoError as exc:
        return str(exc)
    return None


def header_problem(blob: bytes) -> str | None:
    """Why ``blob`` is not a patient-case header (§11.4), or None."""
    try:
        parse_header(blob)
    except CryptoError as exc:
        return str(exc)
    return None
