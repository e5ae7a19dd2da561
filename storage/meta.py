"""Serialisation of timeline event metadata (a small map that may hold bytes)."""

from __future__ import annotations

from typing import Any

import msgpack

__all__ = ["pack_meta", "unpack_meta"]


def pack_meta(meta: dict[str, Any]) -> bytes:
    return msgpack.packb(meta, use_bin_type=True)


def unpack_meta(data: bytes | None) -> dict[str, Any]:
    if not data:
        return {}
    value = msgpack.unpackb(data, raw=False)
    return value if isinstance(value, dict) else {}
