"""REST: sign-up, log-in/log-out (sessions), devices, profile, room list."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from protocol.errors import ErrorCode
from storage.errors import Conflict
from storage.types import NewUser, Session, User

from ..auth import check_password, hash_password, hash_token, new_token
from ..clock import now_ms
from ..errors import ApiError
from ..sessions import require_verified
from ..wire import room_info
from .common import bearer, json_body, services
from .validation import choice, email, optional_text, text

__all__ = ["routes"]

_POSTCODE = re.compile(r"^(?:0[1-9]|[1-8]\d|9[0-8])\d{3}$")  # metropolitan + overseas
_RPPS = re.compile(r"^\d{11}$")
_ADELI = re.compile(r"^\d{9}$")
# Verifying against a throwaway hash when the e-mail is unknown keeps log-in time the
# same either way, so timing does not tell which addresses have accounts.
_DUMMY_HASH: str | None = None


def profile(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "postcode": user.postcode,
        "city": user.city,
        "specialty": user.specialty,
        "practice_mode": user.practice_mode,
        "rpps": user.rpps,
        "verified": user.verified,
    }


async def sign_up(request: Request) -> Response:
    body = await json_body(request)
    svc = services(request)
    password = text(body, "password", 1024, min_len=10, strip=False)
    postcode = text(body, "postcode", 5)
    if not _POSTCODE.match(postcode):
        raise ApiError(ErrorCode.BAD_FRAME, "field 'postcode' must be a French postcode (5 digits)")
    rpps = optional_text(body, "rpps", 11)
    if rpps is not None and not (_RPPS.match(rpps) or _ADELI.match(rpps)):
        raise ApiError(
            ErrorCode.BAD_FRAME,
            "field 'rpps' must be an RPPS (11 digits) or ADELI (9 digits) number",
        )
    new = NewUser(
        email=email(body),
        password_hash="",
        first_name=text(body, "first_name"),
        last_name=text(body, "last_name"),
        postcode=postcode,
        city=text(body, "city"),
        specialty=text(body, "specialty"),
        practice_mode=choice(body, "practice_mode", ("liberal", "salarie")),
        rpps=rpps,
    )
    settings = request.app.state.settings
    hashed = await hash_password(password, settings.password_cost)
    new = replace(new, password_hash=hashed)
    try:
        user = await svc.store.create_user(new, now_ms())
    except Conflict:
        raise ApiError(ErrorCode.CONFLICT, "an account already exists for this e-mail") from None
    return JSONResponse({"user": profile(user)}, status_code=201)


async def log_in(request: Request) -> Response:
    global _DUMMY_HASH
    body = await json_body(request)
    svc = services(request)
    address = email(body)
    password = text(body, "password", 1024, strip=False)
    user = await svc.store.user_by_email(address)
    if user is None:
        if _DUMMY_HASH is None:
            _DUMMY_HASH = await hash_password(new_token(), request.app.state.settings.password_cost)
        await check_password(password, _DUMMY_HASH)
        raise ApiError(ErrorCode.UNAUTHENTICATED, "wrong e-mail or password")
    if not await check_password(password, user.password_hash):
        raise ApiError(ErrorCode.UNAUTHENTICATED, "wrong e-mail or password")
    device_id = optional_text(body, "device_id", 64)
    if device_id is not None:
        device = await svc.store.device(device_id)
        if device is None or device.user_id != user.id:
            raise ApiError(ErrorCode.NOT_FOUND, "field 'device_id' names no device of yours")
    else:
        name = optional_text(body, "device_name", 100) or "appareil"
        device = await svc.store.create_device(user.id, name, now_ms())
    token = new_token()
    now = now_ms()
    ttl_ms = request.app.state.settings.session_ttl_s * 1000
    await svc.store.create_session(
        Session(hash_token(token), user.id, device.id, now, now + ttl_ms)
    )
    return JSONResponse(
        {
            "token": token,
            "user": profile(user),
            "device_id": device.id,
            "expires_at": now + ttl_ms,
        },
        status_code=201,
    )


async def log_out(request: Request) -> Response:
    session, _ = await bearer(request)
    await services(request).store.delete_session(session.token_hash)
    return Response(status_code=204)


async def me(request: Request) -> Response:
    _, user = await bearer(request)
    return JSONResponse({"user": profile(user)})


async def list_devices(request: Request) -> Response:
    _, user = await bearer(request)
    devices = await services(request).store.devices_of(user.id)
    return JSONResponse(
        {"devices": [{"id": d.id, "name": d.name, "created_at": d.created_at} for d in devices]}
    )


async def add_device(request: Request) -> Response:
    """Register another device; log in with its ``device_id`` to get its own token."""
    _, user = await bearer(request)
    body = await json_body(request)
    device = await services(request).store.create_device(user.id, text(body, "name"), now_ms())
    return JSONResponse(
        {"device": {"id": device.id, "name": device.name, "created_at": device.created_at}},
        status_code=201,
    )


async def list_rooms(request: Request) -> Response:
    _, user = await bearer(request)
    require_verified(user)
    rooms = await services(request).store.rooms_of(user.id)
    out = []
    for room, membership in rooms:
        info = room_info(room, membership)
        out.append(
            {
                "id": info.id,
                "kind": info.kind,
                "name": info.name,
                "status": info.status,
                "role": info.role,
                "last_seq": info.last_seq,
                "read_seq": info.read_seq,
                "unread": max(0, info.last_seq - info.read_seq),
            }
        )
    return JSONResponse({"rooms": out})


routes = [
    Route("/v1/accounts", sign_up, methods=["POST"]),
    Route("/v1/sessions", log_in, methods=["POST"]),
    Route("/v1/sessions/current", log_out, methods=["DELETE"]),
    Route("/v1/me", me, methods=["GET"]),
    Route("/v1/devices", list_devices, methods=["GET"]),
    Route("/v1/devices", add_device, methods=["POST"]),
    Route("/v1/rooms", list_rooms, methods=["GET"]),
]
