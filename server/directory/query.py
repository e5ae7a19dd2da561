"""A directory search request, parsed and checked (pure): query parameters in,
:class:`storage.directory.DirectoryQuery` (minus the place lookup) out.

``q`` free text; ``specialty``; ``organisation`` and ``cpts`` (organisation ids);
``near`` (a postcode or a city name, resolved by the store) or ``lat``+``lon``;
``radius_km`` (1-200, default 10); ``limit`` (1-50, default 20); ``cursor`` (opaque,
from the previous page's ``next_cursor``).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from protocol.errors import ErrorCode
from storage.directory import Cursor
from storage.search_text import normalise, tokens

from ..errors import ApiError, bad_field

__all__ = [
    "ID_PATTERN",
    "SearchRequest",
    "decode_cursor",
    "encode_cursor",
    "is_id",
    "parse_search",
]

PARAMS = {
    "q",
    "specialty",
    "organisation",
    "cpts",
    "near",
    "lat",
    "lon",
    "radius_km",
    "limit",
    "cursor",
}
MAX_Q = 200
MAX_RADIUS_KM = 200.0


ID_PATTERN = r"[A-Za-z0-9_-]{1,64}"
_ID = re.compile(ID_PATTERN)


def is_id(value: object) -> bool:
    """Ids of directory records: url-safe characters, 1 to 64 of them."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class SearchRequest:
    words: tuple[str, ...]
    specialty: str | None
    organisation: str | None
    cpts: str | None
    near: str | None  # postcode or city, to resolve
    point: tuple[float, float] | None
    radius_km: float
    limit: int
    after: Cursor | None


def encode_cursor(cursor: Cursor) -> str:
    raw = json.dumps(list(cursor), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(value: str) -> Cursor:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        rank, sort_name, pid = json.loads(raw)
    except (ValueError, binascii.Error, TypeError):
        raise bad_field("cursor", "is not a cursor from a previous page") from None
    if (
        not isinstance(rank, int | float)
        or isinstance(rank, bool)
        or not math.isfinite(rank)
        or not isinstance(sort_name, str)
        or not isinstance(pid, str)
        or len(sort_name) > 400
        or len(pid) > 64
    ):
        raise bad_field("cursor", "is not a cursor from a previous page")
    return float(rank), sort_name, pid


def _number(params: Mapping[str, str], name: str, low: float, high: float) -> float | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise bad_field(name, "must be a number") from None
    if not math.isfinite(value) or not low <= value <= high:
        raise bad_field(name, f"must be between {low:g} and {high:g}")
    return value


def _short(params: Mapping[str, str], name: str, max_len: int = 100) -> str | None:
    value = params.get(name)
    if value is None or not value.strip():
        return None
    if len(value) > max_len:
        raise bad_field(name, f"must have at most {max_len} characters")
    if any(ord(c) < 32 for c in value):
        raise bad_field(name, "must not contain control characters")
    return value.strip()


def parse_search(params: Mapping[str, str]) -> SearchRequest:
    unknown = set(params) - PARAMS
    if unknown:
        raise ApiError(ErrorCode.BAD_FRAME, f"unknown parameter(s): {', '.join(sorted(unknown))}")
    q = params.get("q", "")
    if len(q) > MAX_Q:
        raise bad_field("q", f"must have at most {MAX_Q} characters")
    lat = _number(params, "lat", -90, 90)
    lon = _number(params, "lon", -180, 180)
    if (lat is None) != (lon is None):
        raise bad_field("lat" if lat is None else "lon", "is required with the other coordinate")
    near = _short(params, "near")
    if near is not None and lat is not None:
        raise bad_field("near", "cannot be combined with lat/lon")
    radius = _number(params, "radius_km", 0.1, MAX_RADIUS_KM)
    limit = _number(params, "limit", 1, 50)
    if limit is not None and limit != int(limit):
        raise bad_field("limit", "must be a whole number")
    cursor = _short(params, "cursor", 600)
    specialty = _short(params, "specialty")
    for name in ("organisation", "cpts"):
        value = _short(params, name, 64)
        if value is not None and not is_id(value):
            raise bad_field(name, "must be an organisation id")
    return SearchRequest(
        words=tuple(tokens(q)),
        specialty=normalise(specialty) if specialty else None,
        organisation=_short(params, "organisation", 64),
        cpts=_short(params, "cpts", 64),
        near=near,
        point=(lat, lon) if lat is not None and lon is not None else None,
        radius_km=radius if radius is not None else 10.0,
        limit=int(limit) if limit is not None else 20,
        after=decode_cursor(cursor) if cursor else None,
    )
