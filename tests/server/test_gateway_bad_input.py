"""Bad input on the WebSocket: each gets an error frame (or the documented close), the
connection survives where SPEC.md says so, and nothing is written."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import msgpack
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from clients.python import Account
from harness import ServerUnderTest, practitioner, running_server, sealed, settings_for
from protocol import SUBPROTOCOL, CloseCode, decode_server_frame, encode
from protocol.crypto.envelope import wrap_header
from protocol.errors import ErrorCode
from protocol.frames import (
    Error,
    Event,
    Hello,
    Ping,
    Pong,
    RoomCreate,
    RoomUpdate,
    Send,
    ToDevice,
    Welcome,
)
from protocol.limits import MAX_BAD_FRAMES, MAX_BODY, MAX_FRAME


async def raw(server: ServerUnderTest, **kwargs: Any) -> ClientConnection:
    return await connect(
        server.ws_url,
        subprotocols=kwargs.pop("subprotocols", [SUBPROTOCOL]),
        compression=None,
        max_size=None,
        **kwargs,
    )


async def reply(ws: ClientConnection) -> Any:
    return decode_server_frame(await asyncio.wait_for(ws.recv(), 10))  # type: ignore[arg-type]


async def answer(ws: ClientConnection) -> Any:
    """The next reply, past pushed events."""
    while isinstance(frame := await reply(ws), Event):
        pass
    return frame


async def hello(ws: ClientConnection, account: Account) -> Welcome:
    await ws.send(encode(Hello(1, account.token, account.device_id)))
    welcome = await reply(ws)
    assert isinstance(welcome, Welcome)
    return welcome


async def expect_error(ws: ClientConnection, data: bytes | str, code: ErrorCode) -> Error:
    await ws.send(data)
    frame = await reply(ws)
    assert isinstance(frame, Error), frame
    assert frame.code == code, frame
    return frame


async def still_alive(ws: ClientConnection, rid: int = 999) -> None:
    await ws.send(encode(Ping(rid)))
    pong = await reply(ws)
    assert pong == Pong(rid)


BAD_FRAMES: list[tuple[bytes | str, ErrorCode]] = [
    (b"\xc1", ErrorCode.BAD_FRAME),  # reserved msgpack byte
    (b"\x92\x01\x02", ErrorCode.BAD_FRAME),  # an array, not a map
    (msgpack.packb({"t": "nope", "id": 1}), ErrorCode.BAD_FRAME),
    (msgpack.packb({"t": "ping"}), ErrorCode.BAD_FRAME),  # no id
    (msgpack.packb({"t": "ping", "id": True}), ErrorCode.BAD_FRAME),
    (msgpack.packb({"t": "ping", "id": 1, "extra": 1}), ErrorCode.BAD_FRAME),
    (
        msgpack.packb({"t": "send", "id": 1, "room": 5, "cid": "c", "body": b""}),
        ErrorCode.BAD_FRAME,
    ),
    (
        msgpack.packb({"t": "send", "id": 1, "room": "r", "cid": "c", "body": "text"}),
        ErrorCode.BAD_FRAME,
    ),
    (
        msgpack.packb(
            {"t": "send", "id": 1, "room": "r", "cid": "c", "body": b"x" * (MAX_BODY + 1)}
        ),
        ErrorCode.TOO_LARGE,
    ),
    (b"x" * (MAX_FRAME + 1), ErrorCode.TOO_LARGE),
    (msgpack.packb({"t": "ping", "id": 1}) + b"\x00", ErrorCode.BAD_FRAME),  # trailing bytes
    (msgpack.packb({"t": "ping", "id": msgpack.ExtType(1, b"x")}), ErrorCode.BAD_FRAME),
    ("a text frame", ErrorCode.BAD_FRAME),
]


async def test_bad_frames_get_errors_and_the_connection_survives(server: ServerUnderTest) -> None:
    account = await practitioner(server.url, server.store)
    async with await raw(server) as ws:
        await hello(ws, account)
        for data, code in BAD_FRAMES:
            await expect_error(ws, data, code)
            await still_alive(ws)


async def test_frames_before_hello_are_refused(server: ServerUnderTest) -> None:
    account = await practitioner(server.url, server.store)
    async with await raw(server) as ws:
        error = await expect_error(
            ws, encode(Send(7, "room", "cid", sealed(b"x"))), ErrorCode.UNAUTHENTICATED
        )
        assert error.re == 7
        await hello(ws, account)
        await still_alive(ws)


async def test_second_hello_is_a_conflict(server: ServerUnderTest) -> None:
    account = await practitioner(server.url, server.store)
    async with await raw(server) as ws:
        await hello(ws, account)
        await expect_error(
            ws, encode(Hello(2, account.token, account.device_id)), ErrorCode.CONFLICT
        )
        await still_alive(ws)


async def test_bad_token_gets_an_error_then_close_4401(server: ServerUnderTest) -> None:
    account = await practitioner(server.url, server.store)
    async with await raw(server) as ws:
        await expect_error(
            ws, encode(Hello(1, "forged-token", account.device_id)), ErrorCode.UNAUTHENTICATED
        )
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)
        assert ws.close_code == CloseCode.UNAUTHENTICATED


async def test_token_of_another_device_is_refused(server: ServerUnderTest) -> None:
    account = await practitioner(server.url, server.store)
    async with await raw(server) as ws:
        await expect_error(
            ws, encode(Hello(1, account.token, "other-device")), ErrorCode.UNAUTHENTICATED
        )


async def test_repeated_abuse_closes_with_4400(server: ServerUnderTest) -> None:
    account = await practitioner(server.url, server.store)
    async with await raw(server) as ws:
        await hello(ws, account)
        for _ in range(MAX_BAD_FRAMES):
            await ws.send(b"\xc1")
        with pytest.raises(ConnectionClosed):
            while True:
                await asyncio.wait_for(ws.recv(), 10)
        assert ws.close_code == CloseCode.BAD_REQUEST


async def test_no_hello_in_time_closes_with_4401(tmp_path: Path) -> None:
    settings = replace(settings_for(tmp_path), hello_timeout_s=0.2)
    async with running_server(settings) as server, await raw(server) as ws:
        frame = await reply(ws)
        assert isinstance(frame, Error) and frame.code == ErrorCode.UNAUTHENTICATED
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)
        assert ws.close_code == CloseCode.UNAUTHENTICATED


async def test_wrong_subprotocol_is_refused_at_the_handshake(server: ServerUnderTest) -> None:
    with pytest.raises(InvalidStatus) as info:
        await raw(server, subprotocols=["chat"])
    assert info.value.response.status_code == 403


async def test_disallowed_origin_is_refused(tmp_path: Path) -> None:
    settings = replace(settings_for(tmp_path), allowed_origins=("https://app.confrere.fr",))
    async with running_server(settings) as server:
        with pytest.raises(InvalidStatus):
            await raw(server, origin="https://evil.example")
        async with await raw(server, origin="https://app.confrere.fr") as ws:
            await ws.send(encode(Ping(1)))
            frame = await reply(ws)  # before hello: refused, but the socket was accepted
            assert isinstance(frame, Error) and frame.code == ErrorCode.UNAUTHENTICATED


async def test_bad_input_writes_nothing(server: ServerUnderTest) -> None:
    account = await practitioner(server.url, server.store)
    async with await raw(server) as ws:
        await hello(ws, account)
        for data, _ in BAD_FRAMES:
            await ws.send(data)
            await reply(ws)
    assert await server.store.rooms_of(account.user_id) == []


async def test_a_text_message_of_invalid_utf8_closes_with_1007(server: ServerUnderTest) -> None:
    """RFC 6455 8.1 and SPEC.md §2.1: not a bad frame (a valid text message is one),
    the connection fails with 1007."""
    account = await practitioner(server.url, server.store)
    async with await raw(server) as ws:
        await hello(ws, account)
        await ws.send(b"\xff\xfe not UTF-8", text=True)
        with pytest.raises(ConnectionClosed):
            while True:
                await asyncio.wait_for(ws.recv(), 10)
        assert ws.close_code == 1007


async def test_clear_text_where_ciphertext_belongs_gets_an_error_frame(
    server: ServerUnderTest,
) -> None:
    """SPEC.md §11: a body (of a message or a to-device payload) or a case header that
    is not in the end-to-end format is
    refused with an error frame naming the field and what it must be; nothing is
    stored, the connection goes on, and the same with the format is accepted."""
    account = await practitioner(server.url, server.store)
    async with await raw(server) as ws:
        await hello(ws, account)
        await ws.send(encode(RoomCreate(2, "patient_case", ())))
        case = (await answer(ws)).room
        clear = b"Mme Durand, FA paroxystique"
        refused = [
            (Send(3, case.id, "c1", clear), "send: field 'body' is not an end-to-end room message"),
            (Send(4, case.id, "c2", b"\x01" + clear), "(message too short)"),
            (RoomUpdate(5, case.id, header=clear), "field 'header' is not an end-to-end case"),
            (RoomUpdate(6, case.id, header=wrap_header(account.device_id, clear)), "version 77"),
            (RoomUpdate(7, case.id, name=clear), "field 'name' is not an end-to-end room name"),
            (
                ToDevice(11, account.user_id, account.device_id, clear),
                "field 'body' is not a sealed to-device payload",
            ),
            (ToDevice(12, account.user_id, account.device_id, b"\x01" + clear), "too short"),
            (ToDevice(13, account.user_id, account.device_id, b"\x00" + clear), "version 0"),
        ]
        for frame, words in refused:
            error = await expect_error(ws, encode(frame), ErrorCode.BAD_FRAME)
            assert error.re == frame.id and words in error.message, error
            assert "SPEC.md §11" in error.message
            await still_alive(ws)
        # room.create takes no name (nor header) at all: they are set encrypted after.
        named = {"t": "room.create", "id": 10, "kind": "group", "members": [], "name": "RCP"}
        error = await expect_error(ws, msgpack.packb(named), ErrorCode.BAD_FRAME)
        assert "name" in error.message, error
        assert await server.store.timeline(case.id, 1, 10) == []
        assert await server.store.to_device_pending(account.device_id, 0, 10) == []
        header = wrap_header(account.device_id, sealed(clear))
        await ws.send(encode(RoomUpdate(8, case.id, header=header)))
        assert (await answer(ws)).seq == 2
        await ws.send(encode(Send(9, case.id, "c3", sealed(clear))))
        assert (await answer(ws)).seq == 3
