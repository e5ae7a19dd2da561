"""REST: the caller's key backup (SPEC.md §9.9, formats §11.7).

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
import re
from dataclasses import dataclass
from typing import Annotated, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from storage.backup import BackupStore, KeyBackup
from storage.errors import NoSuchBackup
from storage.ids import new_id

from ..bodies import Base64, Integer, Pattern, base64_field, schema_of
from ..clock import now_ms
from ..errors import bad_field
from ..handlers import Services
from ..openapi import Schema, api_route, array, integer, nullable, obj, string
from .common import bearer, read_body
from .common import services as all_services

__all__ = ["MAX_ENTRIES_PER_REQUEST", "routes"]

MAX_ENTRIES_PER_REQUEST = 500
# 500 entries of at most 512 bytes, in base64 with their ids, fit in 384 KiB.
MAX_ENTRIES_BODY = 384 * 1024
MAX_PAGE = 1000
MAX_ENTRY = 512  # bytes of one entry (protocol/crypto/backup.py MAX_ENTRY)
_ENTRY_ID = re.compile(r"^[0-9a-f]{32}$")
_VERSION = r"^[A-Za-z0-9_-]{1,64}$"
_ENTRY = obj({"id": string(pattern=_ENTRY_ID.pattern), "data": string(max_length=684)})


def services(request: Request) -> Services[BackupStore]:
    return all_services(request)


@dataclass(frozen=True, slots=True)
class Entries:
    """1 to 500 entries ``{id: 32 hexadecimal digits, data: base64 of 41 to 512 bytes}``,
    as ``(id, data)`` sorted by id (an id given twice keeps the last)."""

    def schema(self) -> Schema:
        return array(_ENTRY, max_items=MAX_ENTRIES_PER_REQUEST)

    def parse(self, body: dict[str, Any], name: str) -> tuple[tuple[str, bytes], ...]:
        items = body.get(name)
        if not isinstance(items, list) or not 1 <= len(items) <= MAX_ENTRIES_PER_REQUEST:
            raise bad_field(name, f"must list 1 to {MAX_ENTRIES_PER_REQUEST} entries")
        entries: dict[str, bytes] = {}
        for item in items:
            if not isinstance(item, dict) or not _ENTRY_ID.match(str(item.get("id", ""))):
                raise bad_field(name, "items are {id: 32 hexadecimal digits, data: base64}")
            entries[item["id"]] = base64_field(item.get("data"), name, 41, MAX_ENTRY)
        return tuple(sorted(entries.items()))


_IS_VERSION = Pattern(_VERSION, "must be the backup's version")


@dataclass(frozen=True, slots=True)
class BackupBody:
    salt: Annotated[bytes, Base64(16, 16)]
    opslimit: Annotated[int, Integer(1, 10)]
    memlimit: Annotated[int, Integer(8192, 256 * 1024 * 1024)]
    check: Annotated[bytes, Base64(32, 32)]


@dataclass(frozen=True, slots=True)
class EntriesBody:
    version: Annotated[str, _IS_VERSION]
    entries: Annotated[tuple[tuple[str, bytes], ...], Entries()]


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
    body = await read_body(request, BackupBody)
    now = now_ms()
    backup = KeyBackup(
        user.id, new_id(), body.salt, body.opslimit, body.memlimit, body.check, now, now, 0
    )
    await services(request).store.create_key_backup(backup)
    return JSONResponse(_json(backup), status_code=201)


async def delete_backup(request: Request) -> Response:
    _, user = await bearer(request)
    await services(request).store.delete_key_backup(user.id)
    return Response(status_code=204)


async def put_entries(request: Request) -> Response:
    _, user = await bearer(request)
    body = await read_body(request, EntriesBody, MAX_ENTRIES_BODY)
    count = await services(request).store.put_backup_entries(
        user.id, body.version, body.entries, now_ms()
    )
    return JSONResponse({"entries": count})


async def get_entries(request: Request) -> Response:
    _, user = await bearer(request)
    query = request.query_params
    version = _IS_VERSION.parse(dict(query), "version")
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
        body=schema_of(BackupBody),
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
        body=schema_of(EntriesBody),
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
