"""The authorization matrix (tests/server/authz_table.py) against a live node: every
WebSocket frame type and every REST route, for every kind of caller."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from attachment_kit import sample
from authz_table import KINDS, REST, WEBSOCKET, render, role
from authz_world import World, make_world
from raw_ws import raw_connection

from clients.python import Account, log_in
from clients.python.attachments import upload_document
from harness import PASSWORD, ROOT, ServerUnderTest, boxed, sealed
from protocol.crypto.envelope import wrap_header
from protocol.crypto.identity import IdentityKeys, sign_device
from protocol.crypto.keys import DeviceKeys
from protocol.errors import ErrorCode
from protocol.frames import (
    ClientFrame,
    Error,
    Hello,
    KeysQuery,
    KeysReport,
    KeysSign,
    KeysUpload,
    MsgDelete,
    Ping,
    Read,
    RoomCreate,
    RoomGet,
    RoomInvite,
    RoomLeave,
    RoomRemove,
    RoomRole,
    RoomSettings,
    RoomUninvite,
    RoomUpdate,
    Send,
    Sync,
    ToDevice,
    ToDeviceAck,
    Typing,
)
from server.openapi import document
from server.routes import routes

DOC = ROOT / "docs" / "authorization.md"
# Frames that change the room (or the guest's invitation): each cell gets a fresh one.
MUTATING = {
    "room.invite",
    "room.uninvite",
    "room.leave",
    "room.remove",
    "room.update",
    "room.role",
    "msg.delete",
}
DENIALS = {ErrorCode.UNAUTHENTICATED, ErrorCode.IDENTITY_UNVERIFIED, ErrorCode.FORBIDDEN}

Build = Callable[[World, Account | None, int], ClientFrame]


def _bundle(me: Account | None) -> bytes:
    user, device = (me.user_id, me.device_id) if me else ("u", "d")
    return DeviceKeys.from_seed(b"\x07" * 32).bundle(user, device).to_bytes()


def _owner_signed(world: World) -> bytes:
    """A well-formed identity signature of R's owner's device (no identity is stored:
    the owner gets past the checks to not_found)."""
    owner = world.accounts["room_admin"]
    bundle = DeviceKeys.from_seed(b"\x07" * 32).bundle(owner.user_id, owner.device_id)
    return sign_device(IdentityKeys.from_seed(b"\x08" * 32), bundle).to_bytes()


FRAMES: dict[str, Build] = {
    "send": lambda w, me, i: Send(i, w.room, f"cid-{i}", sealed(b"ciphertext")),
    "sync": lambda w, me, i: Sync(i, w.room, 0, 10),
    "read": lambda w, me, i: Read(i, w.room, 1),
    "typing": lambda w, me, i: Typing(i, w.room, True),
    "to_device": lambda w, me, i: ToDevice(
        i, w.accounts["room_admin"].user_id, w.accounts["room_admin"].device_id, boxed(b"key")
    ),
    "to_device.ack": lambda w, me, i: ToDeviceAck(i, (1,)),
    "msg.delete": lambda w, me, i: MsgDelete(i, w.room, w.message),
    "room.create": lambda w, me, i: RoomCreate(i, "group", (w.accounts["room_admin"].user_id,)),
    "room.get": lambda w, me, i: RoomGet(i, w.room),
    "room.settings": lambda w, me, i: RoomSettings(i, w.room, notify="mentions"),
    "room.invite": lambda w, me, i: RoomInvite(i, w.room, (w.outsider.user_id,)),
    "room.uninvite": lambda w, me, i: RoomUninvite(i, w.room, w.accounts["guest"].email),
    "room.leave": lambda w, me, i: RoomLeave(i, w.room),
    "room.remove": lambda w, me, i: RoomRemove(i, w.room, w.bystander.user_id),
    "room.update": lambda w, me, i: RoomUpdate(
        i, w.room, name=wrap_header("device", sealed(b"renamed"))
    ),
    "room.role": lambda w, me, i: RoomRole(i, w.room, w.bystander.user_id, "admin"),
    "keys.upload": lambda w, me, i: KeysUpload(i, _bundle(me)),
    "keys.sign": lambda w, me, i: KeysSign(i, w.accounts["room_admin"].device_id, _owner_signed(w)),
    "keys.query": lambda w, me, i: KeysQuery(i, (w.accounts["room_admin"].user_id,)),
    "keys.report": lambda w, me, i: KeysReport(
        i, w.room, w.accounts["room_admin"].device_id, "tampered"
    ),
    "ping": lambda w, me, i: Ping(i),
}


async def ws_outcome(world: World, kind: str, frame_type: str) -> str:
    """What the server answers ``kind`` sending ``frame_type`` about a fresh room."""
    if frame_type in MUTATING or not world.room:
        await world.fresh_room()
    me = world.account(kind)
    async with raw_connection(world.server.url) as ws:
        if me is not None:
            await ws.send(Hello(1, me.token, me.device_id))
            await ws.reply_to(1)
        await ws.send(FRAMES[frame_type](world, me, 2))
        reply = await ws.reply_to(2)
    assert not (isinstance(reply, Error) and reply.code is ErrorCode.BAD_FRAME), reply
    if isinstance(reply, Error) and reply.code in DENIALS:
        return reply.code.value
    return "allow"


async def test_every_frame_type_for_every_caller(server: ServerUnderTest) -> None:
    assert set(FRAMES) == set(WEBSOCKET), "every frame type has a row and a request"
    from protocol.frames import CLIENT_FRAMES

    assert set(CLIENT_FRAMES) - {"hello"} == set(WEBSOCKET), "a client frame has no row"
    world = await make_world(server)
    mismatches = []
    for frame_type, (_, expected) in WEBSOCKET.items():
        for kind in KINDS:
            got = await ws_outcome(world, kind, frame_type)
            if got != expected[kind]:
                mismatches.append(f"{frame_type} by {kind}: expected {expected[kind]}, got {got}")
    assert not mismatches, "\n".join(mismatches)


def test_the_document_is_rendered_from_the_tables() -> None:
    text = render()
    if os.environ.get("UPDATE_AUTHZ_DOC"):
        DOC.write_text(text, "utf-8")
    assert Path(DOC).read_text("utf-8") == text, (
        "docs/authorization.md is stale: python tests/server/authz_table.py > docs/authorization.md"
    )


# -- REST

# Rows with a test of their own (the request consumes its resource).
DEDICATED = {"DELETE /v1/attachments/{attachment_id}"}


@dataclass
class Call:
    method: str
    path: str
    json: Any = None
    content: bytes | None = None
    fresh_session: bool = False  # the call ends the caller's session: use a new one
    hidden: bool = False  # a real resource whose existence is hidden: 404 is a refusal


def _default_call(method: str, path: str) -> Call:
    concrete = re.sub(r"\{[^}]+\}", "unknown-id", path)
    body: Any = {} if method in ("POST", "PUT", "PATCH") else None
    return Call(method, concrete, json=body)


async def rest_outcome(world: World, kind: str, call: Call) -> str:
    me = world.account(kind)
    headers = {}
    if me is not None:
        token = me.token
        if call.fresh_session:
            token = (await log_in(world.server.url, me.email, PASSWORD)).token
        headers["Authorization"] = f"Bearer {token}"
    async with httpx.AsyncClient(base_url=world.server.url, timeout=30) as http:
        reply = await http.request(
            call.method, call.path, json=call.json, content=call.content, headers=headers
        )
    assert reply.status_code != 500, f"{call.method} {call.path} by {kind}: {reply.text}"
    if reply.status_code == 401:
        return "unauthenticated"
    if reply.status_code == 403:
        code: str = reply.json()["code"]
        return code
    if reply.status_code == 404 and call.hidden:
        return "not_found"
    return "allow"


def rest_calls(world: World, attachment: str, appointment: str) -> dict[str, Call]:
    """The requests of the rows that need a real resource or a particular body."""
    owner_device = world.accounts["room_admin"].device_id
    return {
        "GET /v1/referrals/{appointment_id}": Call(
            "GET", f"/v1/referrals/{appointment}", hidden=True
        ),
        "GET /v1/referrals/{appointment_id}/accesses": Call(
            "GET", f"/v1/referrals/{appointment}/accesses", hidden=True
        ),
        "GET /v1/attachments/{attachment_id}": Call("GET", f"/v1/attachments/{attachment}"),
        "GET /v1/attachments/{attachment_id}/meta": Call(
            "GET", f"/v1/attachments/{attachment}/meta"
        ),
        "POST /v1/attachments": Call(
            "POST",
            f"/v1/attachments?kind=document&content_type=application/pdf&room={world.room}",
            content=sample("application/pdf", 1000),
        ),
        "DELETE /v1/sessions/current": Call("DELETE", "/v1/sessions/current", fresh_session=True),
        # R's owner's own device, in use: a rename, or a 409 (log out instead).
        "PATCH /v1/devices/{device_id}": Call(
            "PATCH", f"/v1/devices/{owner_device}", json={"name": "Cabinet"}, hidden=True
        ),
        "DELETE /v1/devices/{device_id}": Call(
            "DELETE", f"/v1/devices/{owner_device}", hidden=True
        ),
        "GET /v1/profiles": Call("GET", f"/v1/profiles?users={world.bystander.user_id}"),
        "PUT /v1/admin/users/{user_id}/verified": Call(
            "PUT", f"/v1/admin/users/{world.bystander.user_id}/verified", json={"verified": True}
        ),
    }


async def test_every_rest_route_for_every_caller(server: ServerUnderTest) -> None:
    doc = document(routes)
    declared = {
        f"{method.upper()} {path}": op["x-auth"]
        for path, methods in doc["paths"].items()
        for method, op in methods.items()
    }
    missing = sorted(set(declared) - set(REST))
    assert not missing, f"routes without a row in authz_table.REST: {missing}"
    for route, auth in declared.items():  # the table agrees with each route's declaration
        outcomes = REST[route][1]
        assert (outcomes["anonymous"] == "allow") == (auth == "none"), route
        if auth.startswith("role:"):
            assert outcomes == role(auth.removeprefix("role:")), route
    world = await make_world(server)
    await world.fresh_room()
    attachment = await _document_in_room(world)
    calls = rest_calls(world, attachment, await _referral_by_room_admin(world))
    mismatches = []
    for route, (_, expected) in REST.items():
        if route in DEDICATED:
            continue
        if route not in declared:
            mismatches.append(f"{route}: in the table but not served")
            continue
        method, path = route.split(" ", 1)
        call = calls.get(route) or _default_call(method, path)
        for kind in KINDS:
            got = await rest_outcome(world, kind, call)
            if got != expected[kind]:
                mismatches.append(f"{route} by {kind}: expected {expected[kind]}, got {got}")
    assert not mismatches, "\n".join(mismatches)


async def test_delete_attachment_is_for_its_uploader_only(server: ServerUnderTest) -> None:
    world = await make_world(server)
    await world.fresh_room()
    outcomes = {}
    for kind in KINDS:
        attachment = await _document_in_room(world)
        outcomes[kind] = await rest_outcome(
            world, kind, Call("DELETE", f"/v1/attachments/{attachment}")
        )
    assert outcomes == REST["DELETE /v1/attachments/{attachment_id}"][1] | {}


async def _referral_by_room_admin(world: World) -> str:
    """An appointment R's owner booked with Dr Faure (a practitioner outside R) for a
    patient: patient data, readable by its two parties only."""
    from directory_kit import small_directory
    from test_referrals import booking, faure

    await small_directory(world.server.store)
    await faure(world.server)
    async with httpx.AsyncClient(base_url=world.server.url) as http:
        booked = await http.post(
            "/v1/referrals",
            json=booking(),
            headers={"Authorization": f"Bearer {world.accounts['room_admin'].token}"},
        )
    assert booked.status_code == 201, booked.text
    appointment_id: str = booked.json()["appointment"]["id"]
    return appointment_id


async def _document_in_room(world: World) -> str:
    """A PDF uploaded to R by its owner."""
    described = await upload_document(
        world.accounts["room_admin"], sample("application/pdf", 2000), room=world.room
    )
    attachment_id: str = described["id"]
    return attachment_id
