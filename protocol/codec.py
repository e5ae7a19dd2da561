"""Bytes <-> frames. One msgpack map per WebSocket binary message.

``decode_client_frame`` is what a server runs on untrusted input: it bounds every
length before allocating, rejects extension types, trailing bytes, non-string keys and
unknown fields, and raises only :class:`~protocol.errors.BadFrame`.
"""

from __future__ import annotations

from typing import Any

import msgpack

from .errors import BadFrame, ErrorCode
from .fields import FieldReader
from .frames import CLIENT_FRAMES, REPLY_FRAMES, SERVER_FRAMES, ClientFrame, ServerFrame
from .limits import MAX_FRAME, MAX_REQUEST_ID

__all__ = ["decode_client_frame", "decode_server_frame", "encode", "pack", "server_frame"]

_packer_opts: dict[str, Any] = {"use_bin_type": True}


def pack(value: dict[str, Any]) -> bytes:
    """Serialise a wire map (``frame.to_wire()``) to bytes."""
    return msgpack.packb(value, **_packer_opts)


def encode(frame: ClientFrame | ServerFrame) -> bytes:
    """Serialise one frame to the bytes of one WebSocket binary message."""
    return pack(frame.to_wire())


def _unpack(data: bytes, max_len: int) -> dict[str, Any]:
    if len(data) > max_len:
        raise BadFrame(f"frame exceeds {max_len} bytes", code=ErrorCode.TOO_LARGE)
    try:
        value = msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=True,
            max_str_len=max_len,
            max_bin_len=max_len,
            max_array_len=100_000,
            max_map_len=64,
            max_ext_len=0,
        )
    except msgpack.ExtraData:
        raise BadFrame("trailing bytes after the frame") from None
    except (ValueError, msgpack.UnpackException, TypeError, RecursionError) as exc:
        raise BadFrame(f"not valid msgpack ({type(exc).__name__})") from None
    if not isinstance(value, dict):
        raise BadFrame("a frame must be a msgpack map")
    return value


def _request_id(value: dict[str, Any], key: str, lowest: int) -> int | None:
    rid = value.get(key)
    if isinstance(rid, int) and not isinstance(rid, bool) and lowest <= rid <= MAX_REQUEST_ID:
        return rid
    return None


def decode_client_frame(data: bytes) -> ClientFrame:
    """Parse one client frame; raise :class:`BadFrame` (with ``re`` when readable)."""
    value = _unpack(data, MAX_FRAME)
    # Request ids start at 1: ``re: 0`` is the unsolicited welcome's (SPEC.md §3).
    re = _request_id(value, "id", 1)
    kind = value.get("t")
    if not isinstance(kind, str):
        raise BadFrame("missing frame type 't'", re)
    cls = CLIENT_FRAMES.get(kind)
    if cls is None:
        raise BadFrame(f"unknown frame type '{kind[:32]}'", re)
    if re is None:
        raise BadFrame(f"{kind}: 'id' must be an integer between 1 and {MAX_REQUEST_ID}")
    reader = FieldReader(value, kind, re, plain_text=True)
    frame: ClientFrame = cls.parse(reader, re)
    reader.done()
    return frame


def decode_server_frame(data: bytes) -> ServerFrame:
    """Parse one server frame (client side). Unknown fields are tolerated for forward
    compatibility; unknown frame types and malformed fields raise :class:`BadFrame`."""
    return server_frame(_unpack(data, 64 * 1024 * 1024))


def server_frame(value: dict[str, Any]) -> ServerFrame:
    """The frame of a server message already unpacked to a map (for a client that
    unpacks its hot frames by hand and hands the rest here); as
    :func:`decode_server_frame`."""
    kind = value.get("t")
    cls = SERVER_FRAMES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise BadFrame(f"unknown server frame type {kind!r:.40}")
    re = _request_id(value, "re", 0)
    if re is None and kind in REPLY_FRAMES:
        raise BadFrame(f"{kind}: missing 're'")
    reader = FieldReader(value, str(kind), re)
    frame: ServerFrame = cls.parse(reader, re)
    reader.done(strict=False)
    return frame
