"""A fuzz run of the live WebSocket endpoint: random bytes, and valid frames of every
type mutated (fields dropped, added, retyped, bytes flipped, cut, appended) and sent
over several connections by two members of a room. The node must stay healthy: every
request is answered with a reply or an error other than ``internal``, nothing is
logged as an unhandled error, connections are only ever closed with the documented
codes, and afterwards a fresh client still exchanges messages."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import Any

import httpx
import msgpack
import pytest
from raw_ws import Raw, raw_connection
from websockets.exceptions import ConnectionClosed

from clients.python import Account
from harness import ServerUnderTest, boxed, connected, next_of, opened, practitioner, sealed
from protocol import CloseCode, decode_server_frame
from protocol.crypto.envelope import wrap_header
from protocol.errors import ErrorCode
from protocol.frames import (
    Error,
    Hello,
    KeysQuery,
    KeysReport,
    KeysUpload,
    Msg,
    MsgDelete,
    Ping,
    Pong,
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

FRAMES_PER_CONNECTION = 400
CONNECTIONS = 4
SEED = 20261122
CLOSES = {CloseCode.BAD_REQUEST, CloseCode.UNAUTHENTICATED, 1009, 1007}


def templates(room: str, me: Account, other: Account) -> list[dict[str, Any]]:
    """One valid frame of every client type, as wire maps."""
    frames = [
        Send(1, room, "cid", sealed(b"cipher")),
        Send(1, room, "cid-edit", sealed(b"cipher"), edits=2),
        MsgDelete(1, room, 2),
        Sync(1, room, 0, 50),
        Read(1, room, 1),
        Typing(1, room, True),
        ToDevice(1, other.user_id, other.device_id, boxed(b"key")),
        ToDeviceAck(1, (1, 2)),
        RoomCreate(1, "group", (other.user_id,)),
        RoomGet(1, room),
        RoomSettings(1, room, notify="none", archived=True, pinned=True, unread=False),
        Send(1, room, "cid-mention", sealed(b"cipher"), mentions=(other.user_id,)),
        RoomInvite(1, room, (other.user_id,)),
        RoomUninvite(1, room, "x@example.org"),
        RoomLeave(1, room),
        RoomRemove(1, room, other.user_id),
        RoomUpdate(1, room, name=wrap_header(me.device_id, sealed(b"m"))),
        RoomRole(1, room, other.user_id, "admin"),
        KeysUpload(1, b"\x01" + b"\x00" * 200),
        KeysQuery(1, (me.user_id, other.user_id)),
        KeysReport(1, room, other.device_id, "bad_mac"),
        Ping(1),
        Hello(1, me.token, me.device_id),
    ]
    return [f.to_wire() for f in frames]


def weird(rng: random.Random, ids: list[str]) -> Any:
    return rng.choice(
        [
            None,
            True,
            -1,
            0,
            2**53,
            2**64 - 1,
            -(2**63),
            1.5,
            "",
            "x" * 70,
            "\udcff".encode("utf-8", "surrogatepass").decode("utf-8", "replace"),
            b"",
            b"\x00" * 70_000,
            [],
            ["a"] * 600,
            list(range(1001)),
            {},
            {"t": "send"},
            rng.choice(ids),
            rng.randbytes(rng.randint(0, 40)),
        ]
    )


def mutate(rng: random.Random, wire: dict[str, Any], ids: list[str], request_id: int) -> bytes:
    frame = dict(wire)
    frame["id"] = request_id
    for _ in range(rng.randint(0, 3)):
        action = rng.randrange(6)
        keys = list(frame)
        if action == 0 and keys:
            frame.pop(rng.choice(keys))
        elif action == 1:
            frame[rng.choice(["x", "re", "att", "emails", "limit"])] = weird(rng, ids)
        elif action == 2 and keys:
            frame[rng.choice(keys)] = weird(rng, ids)
        elif action == 3:
            frame["t"] = rng.choice(["send", "hello", "nope", "", "ROOM.CREATE", "ping"])
        elif action == 4 and keys:
            key = rng.choice(keys)
            frame[key] = frame[key]  # unchanged: keep valid frames in the mix
    try:
        data = bytearray(msgpack.packb(frame, use_bin_type=True))
    except (OverflowError, ValueError, TypeError):
        data = bytearray(rng.randbytes(8))
    byte_action = rng.randrange(16)  # a quarter of the frames are cut or corrupted
    if byte_action == 0 and data:
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif byte_action == 1:
        data = data[: rng.randrange(len(data) + 1)]
    elif byte_action == 2:
        data += rng.randbytes(rng.randint(1, 8))
    elif byte_action == 3:
        data = bytearray(rng.randbytes(rng.randint(0, 64)))
    return bytes(data)


async def hammer(
    server: ServerUnderTest,
    me: Account,
    room: str,
    ids: list[str],
    tmpl: list[dict[str, Any]],
    seed: int,
) -> tuple[dict[ErrorCode, int], set[int | None]]:
    rng = random.Random(seed)
    errors: dict[ErrorCode, int] = {}
    closes: set[int | None] = set()
    sent = 0
    while sent < FRAMES_PER_CONNECTION:
        async with raw_connection(server.url, me) as raw:
            pongs: asyncio.Queue[int] = asyncio.Queue()
            reader = asyncio.create_task(drain(raw, errors, pongs))
            try:
                while sent < FRAMES_PER_CONNECTION and not reader.done():
                    sent += 1
                    await raw.ws.send(mutate(rng, rng.choice(tmpl), ids, 1000 + sent))
                    # Lockstep: once the ping is answered, the frame before it was read.
                    await raw.send(Ping(10**9 + sent))
                    waiter = asyncio.ensure_future(until_pong(pongs, 10**9 + sent))
                    await asyncio.wait(
                        [waiter, reader], timeout=10, return_when=asyncio.FIRST_COMPLETED
                    )
                    waiter.cancel()
            except ConnectionClosed:
                pass
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            if raw.ws.close_code is not None:
                closes.add(raw.ws.close_code)
    return errors, closes


async def until_pong(pongs: asyncio.Queue[int], ping: int) -> None:
    while await pongs.get() != ping:
        pass


async def drain(raw: Raw, errors: dict[ErrorCode, int], pongs: asyncio.Queue[int]) -> None:
    try:
        async for data in raw.ws:
            assert isinstance(data, bytes)
            frame = decode_server_frame(data)
            if isinstance(frame, Pong):
                pongs.put_nowait(frame.re)
            elif isinstance(frame, Error):
                errors[frame.code] = errors.get(frame.code, 0) + 1
    except ConnectionClosed:
        pass


async def test_random_and_mutated_frames_leave_the_node_healthy(
    server: ServerUnderTest, caplog: pytest.LogCaptureFixture
) -> None:
    alice = await practitioner(server.url, server.store)
    bob = await practitioner(server.url, server.store)
    a = await connected(alice)
    room = (await a.create_room("group", [bob.user_id])).id
    await a.close()
    ids = [room, alice.user_id, bob.user_id, alice.device_id, bob.device_id]
    caplog.set_level(logging.WARNING)

    runs = await asyncio.gather(
        *(
            hammer(server, who, room, ids, templates(room, who, other), SEED + n)
            for n, (who, other) in enumerate([(alice, bob), (bob, alice)] * (CONNECTIONS // 2))
        )
    )
    errors: dict[ErrorCode, int] = {}
    closes: set[int | None] = set()
    for run_errors, run_closes in runs:
        for code, n in run_errors.items():
            errors[code] = errors.get(code, 0) + n
        closes |= run_closes
    print(
        f"\nws fuzz: {CONNECTIONS * FRAMES_PER_CONNECTION} frames, errors {errors}, closes {closes}"
    )

    assert ErrorCode.INTERNAL not in errors
    assert errors.get(ErrorCode.BAD_FRAME, 0) > 0  # the fuzzer did reach the decoder
    assert closes <= CLOSES | {CloseCode.NORMAL}
    unhandled = [r for r in caplog.records if r.exc_info and r.name.startswith("confrere")]
    assert not unhandled, unhandled[0].getMessage()

    async with httpx.AsyncClient(base_url=server.url) as http:
        assert (await http.get("/readyz")).status_code == 200
    carol = await practitioner(server.url, server.store)
    c1, c2 = await connected(carol), await connected(alice)
    try:
        fresh = await c1.create_room("direct", [alice.user_id])
        await c1.send(fresh.id, sealed(b"still alive"))
        got = await next_of(c2, Msg, room=fresh.id)
        assert isinstance(got, Msg) and opened(got.body) == b"still alive"
    finally:
        await c1.close()
        await c2.close()
