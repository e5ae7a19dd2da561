"""REST for platform administrators (role ``admin``): the audit log, and the identity
switch of an account (which also closes the account's live connections when turned
off). Every call here is itself recorded in the audit log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from protocol.errors import ErrorCode
from storage.audit import AuditEntry, AuditQuery, AuditStore
from storage.base import UserStore
from storage.directory import DirectoryStore
from storage.roles import RoleStore

from ..audit import record
from ..bodies import Flag, schema_of
from ..directory.profiles import on_identity_verified
from ..errors import ApiError
from ..handlers import Services
from ..node import node
from ..openapi import api_route, array, boolean, integer, nullable, obj, string
from ..revocation import revoke
from ..sessions import require_role
from .common import bearer, read_body
from .common import services as all_services

__all__ = ["routes"]


class AdminPorts(AuditStore, UserStore, RoleStore, DirectoryStore, Protocol):
    """What admin uses of the store."""


def services(request: Request) -> Services[AdminPorts]:
    return all_services(request)


MAX_LIMIT = 500
_ID = r"^[A-Za-z0-9_-]{1,64}$"


def _int_param(request: Request, name: str, low: int, high: int) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise ApiError(
            ErrorCode.BAD_FRAME, f"field '{name}' must be an integer from {low} to {high}"
        )
    return int(raw)


def _text_param(request: Request, name: str) -> str | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    if len(raw) > 64:
        raise ApiError(ErrorCode.BAD_FRAME, f"field '{name}' must have at most 64 characters")
    return raw


def _entry(e: AuditEntry) -> dict[str, Any]:
    return {
        "id": e.id,
        "ts": e.ts,
        "action": e.action,
        "actor": e.actor,
        "target": e.target,
        "detail": e.detail,
    }


async def audit_log(request: Request) -> Response:
    """``GET /v1/admin/audit?actor=&action=&target=&since=&before=&limit=``: newest
    first; ``action`` ending with "." is a prefix ("admin."); ``before`` pages back."""
    _, user = await bearer(request)
    svc = services(request)
    await require_role(svc.store, user, "admin")
    unknown = set(request.query_params) - {"actor", "action", "target", "since", "before", "limit"}
    if unknown:
        raise ApiError(ErrorCode.BAD_FRAME, f"unknown parameter(s): {', '.join(sorted(unknown))}")
    query = AuditQuery(
        actor=_text_param(request, "actor"),
        action=_text_param(request, "action"),
        target=_text_param(request, "target"),
        since=_int_param(request, "since", 0, 2**62),
        before_id=_int_param(request, "before", 1, 2**62),
        limit=_int_param(request, "limit", 1, MAX_LIMIT) or 100,
    )
    entries = await svc.store.audit_entries(query)
    await record(svc.store, "audit.read", user.id, None, returned=len(entries))
    return JSONResponse({"entries": [_entry(e) for e in entries]})


@dataclass(frozen=True, slots=True)
class VerifiedBody:
    verified: Annotated[bool, Flag()]


async def set_identity(request: Request) -> Response:
    """``PUT /v1/admin/users/{user_id}/verified`` ``{"verified": bool}``."""
    _, admin = await bearer(request)
    svc = services(request)
    await require_role(svc.store, admin, "admin")
    user_id = request.path_params["user_id"]
    verified = (await read_body(request, VerifiedBody)).verified
    target = await svc.store.user_by_id(user_id) if len(user_id) <= 64 else None
    if target is None:
        raise ApiError(ErrorCode.NOT_FOUND, "no such user")
    await svc.store.set_verified(user_id, verified)
    await record(svc.store, "admin.verified" if verified else "admin.unverified", admin.id, user_id)
    if not verified:
        await revoke(svc.hub.broker, node(request).live, user_id, "unverified")
    elif not target.verified:  # in the directory at once, as by any other path
        await on_identity_verified(svc.store, target)
    return JSONResponse({"user": {"id": user_id, "verified": verified}})


_ENTRY = obj(
    {
        "id": integer(minimum=1),
        "ts": integer(),
        "action": string(),
        "actor": nullable(string()),
        "target": nullable(string()),
        "detail": {"type": "object"},
    }
)

routes = [
    api_route(
        "/v1/admin/audit",
        audit_log,
        summary="The audit log, newest first (administrators)",
        auth="role:admin",
        query={
            "actor": string(max_length=64),
            "action": string(max_length=64),
            "target": string(max_length=64),
            "since": integer(minimum=0),
            "before": integer(minimum=1),
            "limit": integer(minimum=1, maximum=MAX_LIMIT),
        },
        response=obj({"entries": array(_ENTRY)}),
    ),
    api_route(
        "/v1/admin/users/{user_id}/verified",
        set_identity,
        "PUT",
        summary="Mark an identity verified or not; unverifying closes the user's live"
        " connections (administrators)",
        auth="role:admin",
        body=schema_of(VerifiedBody),
        response=obj({"user": obj({"id": string(pattern=_ID), "verified": boolean()})}),
        errors=(404, 413),
    ),
]
