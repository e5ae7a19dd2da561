"""REST: the caller's key backup (SPEC.md §9.6, formats §11.7).

The backup belongs to the account: any of its sessions reads and writes it, nobody
else (no route names another account). The server stores what the client sends,
bounded, and reads none of it: Argon2id parameters and a check value in clear, entries
as opaque ciphertexts under opaque ids.

- ``GET /v1/keys/backup``: the parameters and the number of entries, or 404
  ``no_backup``.
- ``PUT /v1/keys/backup``: a new backup (a new recovery phrase) replaces the previous
  one and its entries; answers its ``version``.
- ``DELETE /v1/keys/backup``.
- ``POST /v1/keys/backup/entries``: add or replace up to 500 entries of ``version``
  (409 ``backup_replaced`` if another device made a new backup meanwhile).
- ``GET /v1/keys/backup/entries?version=&after=&limit=``: a page of entries, in id order.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from storage.backup import KeyBackup
from storage.errors import NoSuchBackup
from storage.ids import new_id

from ..clock import now_ms
from ..errors import bad_field
from ..openapi import api_route, array, integer, nullable, obj, string
from .common import bearer, json_body, services

__all__ = ["MAX_ENTRIES_PER_REQUEST", "routes"]

MAX_ENTRIES_PER_REQUEST = 500
# 500 entries of at most 512 bytes, in base64 with their ids, fit in 384 KiB.
MAX_ENTRIES_BODY = 384 * 1024
MAX_PAGE = 1000
MAX_ENTRY = 512  # bytes of one entry (protocol/crypto/backup.py MAX_ENTRY)
_ENTRY_ID = re.compile(r"^[0-9a-f]{32}$")
_VERSION = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_MIN_OPS, _MAX_OPS = 1, 10
_MIN_MEM, _MAX_MEM = 8192, 256 * 1024 * 1024


def _b64(body: dict[str, Any], field: str, min_size: int, max_size: int) -> bytes:
    value = body.get(field)
    if not isinstance(value, str) or len(value) > 4 * max_size // 3 + 4:
        raise bad_field(field, "is required and must be base64")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise bad_field(field, "must be base64") from None
    if not min_size <= len(raw) <= max_size:
        raise bad_field(field, f"must be {min_size} to {max_size} bytes")
    return raw


def _int(body: dict[str, Any], field: str, low: int, high: int) -> int:
    value = body.get(field)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise bad_field(field, f"must be an integer from {low} to {high}")
    return value


def _version(value: object) -> str:
    if not isinstance(value, str) or not _VERSION.match(value):
        raise bad_field("version", "must be the backup's version")
    return value


def _json(backup: KeyBackup) -> dict[str, Any]:
    return {
        "version": backup.version,
        "salt": base64.b64encode(backup.salt).decode(),
        "opslimit": backup.opslimit,
        "memlimit": backup.memlimit,
        "check": base64.b64encode(backup.check).decode(),
        "entries": backup.entries,
        "created_at": backup.created_at,
        "updated_at": backup.updated_at,
    }


async def get_backup(request: Request) -> Response:
    _, user = await bearer(request)
    backup = await services(request).store.key_backup(user.id)
    if backup is None:
        raise NoSuchBackup(user.id)  # 404 no_backup (server/errors.py)
    return JSONResponse(_json(backup))


async def put_backup(request: Request) -> Response:
    _, user = await bearer(request)
    body = await json_body(request)
    now = now_ms()
    backup = KeyBackup(
        user.id,
        new_id(),
        _b64(body, "salt", 16, 16),
        _int(body, "opslimit", _MIN_OPS, _MAX_OPS),
        _int(body, "memlimit", _MIN_MEM, _MAX_MEM),
        _b64(body, "check", 32, 32),
        now,
        now,
        0,
    )
    await services(request).store.create_key_backup(backup)
    return JSONResponse(_json(backup), status_code=201)


async def delete_backup(request: Request) -> Response:
    _, user = await bearer(request)
    await services(request).store.delete_key_backup(user.id)
    return Response(status_code=204)


async def put_entries(request: Request) -> Response:
    _, user = await bearer(request)
    body = await json_body(request, MAX_ENTRIES_BODY)
    version = _version(body.get("version"))
    items = body.get("entries")
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_ENTRIES_PER_REQUEST:
        raise bad_field("entries", f"must list 1 to {MAX_ENTRIES_PER_REQUEST} entries")
    entries: dict[str, bytes] = {}
    for item in items:
        if not isinstance(item, dict) or not _ENTRY_ID.match(str(item.get("id", ""))):
            raise bad_field("entries", "items are {id: 32 hexadecimal digits, data: base64}")
        entries[item["id"]] = _b64(item, "data", 41, MAX_ENTRY)
    count = await services(request).store.put_backup_entries(
        user.id, version, sorted(entries.items()), now_ms()
    )
    return JSONResponse({"entries": count})


async def get_entries(request: Request) -> Response:
    _, user = await bearer(request)
    query = request.query_params
    version = _version(query.get("version"))
    after = query.get("after", "")
    if after and not _ENTRY_ID.match(after):
        raise bad_field("after", "must be an entry id")
    raw_limit = query.get("limit", str(MAX_PAGE))
    if not raw_limit.isascii() or not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_PAGE:
        raise bad_field("limit", f"must be an integer from 1 to {MAX_PAGE}")
    limit = int(raw_limit)
    page = await services(request).store.backup_entries(user.id, version, after, limit)
    return JSONResponse(
        {
            "entries": [{"id": i, "data": base64.b64encode(d).decode()} for i, d in page],
            "next": page[-1][0] if len(page) == limit else None,
        }
    )


_BACKUP = obj(
    {
        "version": string(),
        "salt": string(),
        "opslimit": integer(),
        "memlimit": integer(),
        "check": string(),
        "entries": integer(),
        "created_at": integer(),
        "updated_at": integer(),
    }
)
_ENTRY = obj({"id": string(min_length=32, max_length=32), "data": string(max_length=700)})

routes = [
    api_route(
        "/v1/keys/backup",
        get_backup,
        summary="The account's key backup: Argon2id parameters, check value, entry count",
        response=_BACKUP,
        errors=(404,),
    ),
    api_route(
        "/v1/keys/backup",
        put_backup,
        "PUT",
        summary="Start a new key backup (a new recovery phrase), replacing the previous one",
        body=obj(
            {
                "salt": string(max_length=24),
                "opslimit": integer(minimum=_MIN_OPS, maximum=_MAX_OPS),
                "memlimit": integer(minimum=_MIN_MEM, maximum=_MAX_MEM),
                "check": string(max_length=44),
            },
            required=("salt", "opslimit", "memlimit", "check"),
        ),
        response=_BACKUP,
        status=201,
        errors=(413,),
    ),
    api_route(
        "/v1/keys/backup",
        delete_backup,
        "DELETE",
        summary="Delete the account's key backup",
        status=204,
    ),
    api_route(
        "/v1/keys/backup/entries",
        put_entries,
        "POST",
        summary="Add or replace encrypted entries (sender keys) of the current backup",
        body=obj(
            {
                "version": string(max_length=64),
                "entries": array(_ENTRY, max_items=MAX_ENTRIES_PER_REQUEST),
            },
            required=("version", "entries"),
        ),
        response=obj({"entries": integer()}),
        errors=(404, 409, 413),
    ),
    api_route(
        "/v1/keys/backup/entries",
        get_entries,
        summary="A page of the backup's entries, in id order; 'next' is the 'after' of the next",
        query={
            "version": string(max_length=64),
            "after": string(max_length=32),
            "limit": integer(minimum=1, maximum=MAX_PAGE),
        },
        required_query=("version",),
        response=obj({"entries": array(_ENTRY), "next": nullable(string())}),
        errors=(404, 409),
    ),
]
