"""The WebSocket transport (server/websocket.py): framing, paths, fragments, keepalive."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any, cast

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from harness import ServerUnderTest, practitioner
from protocol import SUBPROTOCOL, decode_server_frame, encode
from protocol.frames import Hello, Ping, Pong, Welcome
from server.gateway import Connection
from server.websocket import WebSocketProtocol, wire_frame

PING_INTERVAL_S = 20.0


def parse(wire: bytes) -> Frame:
    """Parse one frame as a client would (unmasked server frame)."""
    reader = StreamReader()
    reader.feed_data(wire)
    parser = Frame.parse(reader.read_exact, mask=False)
    try:
        next(parser)
    except StopIteration as done:
        frame: Frame = done.value
        return frame
    raise AssertionError("incomplete frame")


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 200_000])
def test_wire_frame_is_one_final_binary_frame(size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    frame = parse(wire_frame(payload))
    assert (frame.opcode, frame.fin, bytes(frame.data)) == (Opcode.BINARY, True, payload)


def test_a_fan_out_frames_once_and_a_new_payload_gets_its_own_frame() -> None:
    first, second = b"a" * 300, b"b" * 300
    wire = wire_frame(first)
    assert wire_frame(first) is wire  # the same bytes object: framed once
    assert bytes(parse(wire_frame(second)).data) == second
    # An equal payload in another object is framed again, correctly.
    assert bytes(parse(wire_frame(bytes(first))).data) == first


async def test_another_path_is_not_found(server: ServerUnderTest) -> None:
    url = server.ws_url.replace("/v1/ws", "/v1/other")
    with pytest.raises(InvalidStatus) as refused:
        await connect(url, subprotocols=[SUBPROTOCOL])  # type: ignore[list-item]
    assert refused.value.response.status_code == 404


async def test_a_fragmented_message_is_reassembled(server: ServerUnderTest) -> None:
    account = await practitioner(server.url, server.store)
    hello = encode(Hello(1, account.token, account.device_id))
    async with connect(server.ws_url, subprotocols=[SUBPROTOCOL]) as ws:  # type: ignore[list-item]
        await ws.send([hello[:5], hello[5:20], hello[20:]])  # three frames, one message
        welcome = decode_server_frame(await asyncio.wait_for(ws.recv(), 10))  # type: ignore[arg-type]
        assert isinstance(welcome, Welcome)


async def say_hello(server: ServerUnderTest, ws: ClientConnection) -> None:
    account = await practitioner(server.url, server.store)
    await ws.send(encode(Hello(1, account.token, account.device_id)))
    welcome = decode_server_frame(await asyncio.wait_for(ws.recv(), 10))  # type: ignore[arg-type]
    assert isinstance(welcome, Welcome)


def only_connection(server: ServerUnderTest) -> Connection:
    (conn,) = server.app.live.all()
    assert isinstance(conn, Connection)
    return conn


@contextlib.asynccontextmanager
async def pinged(
    server: ServerUnderTest,
) -> AsyncIterator[tuple[ClientConnection, Connection, float]]:
    """A client past hello that never pings itself, its server connection, and the loop
    time at which the server just pinged it."""
    async with connect(server.ws_url, subprotocols=[SUBPROTOCOL], ping_interval=None) as ws:  # type: ignore[list-item]
        await say_hello(server, ws)
        conn = only_connection(server)
        now = asyncio.get_running_loop().time()
        conn.keepalive(now, PING_INTERVAL_S)  # ping sent; no await: no answer yet
        yield ws, conn, now


async def round_trip(ws: ClientConnection, rid: int) -> None:
    await ws.send(encode(Ping(rid)))
    assert decode_server_frame(await asyncio.wait_for(ws.recv(), 10)) == Pong(rid)  # type: ignore[arg-type]


async def test_a_peer_that_never_answers_a_ping_is_closed(server: ServerUnderTest) -> None:
    async with pinged(server) as (ws, conn, now):
        conn.keepalive(now + PING_INTERVAL_S, PING_INTERVAL_S)  # the next round: still waiting
        conn.keepalive(now + 2 * PING_INTERVAL_S, PING_INTERVAL_S)  # two rounds later: closed
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)
        assert ws.close_code == 1011


async def test_a_peer_that_answers_stays(server: ServerUnderTest) -> None:
    async with pinged(server) as (ws, conn, now):
        await round_trip(ws, 2)  # anything the peer sends after the ping shows it is alive
        conn.keepalive(now + 2 * PING_INTERVAL_S, PING_INTERVAL_S)  # pings again, no close
        await round_trip(ws, 3)


async def test_one_unanswered_round_does_not_close(server: ServerUnderTest) -> None:
    async with pinged(server) as (ws, conn, now):
        conn.keepalive(now + 1, PING_INTERVAL_S)  # the rounds' order shifted
        conn.keepalive(now + PING_INTERVAL_S, PING_INTERVAL_S)  # one round: may be late
        await round_trip(ws, 2)


class Recorder(asyncio.Transport):
    """A transport that keeps what is written, one entry per write."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True


def opened(loop: asyncio.AbstractEventLoop | None = None) -> tuple[WebSocketProtocol, Recorder]:
    state = cast(Any, SimpleNamespace(connections=set()))
    config = cast(Any, SimpleNamespace(app=None))
    protocol = WebSocketProtocol(config, state, {}, loop, accepted=True)
    transport = Recorder()
    protocol.connection_made(transport)
    return protocol, transport


async def test_frames_sent_in_one_turn_go_out_in_one_write_in_order() -> None:
    protocol, transport = opened()
    protocol.send(b"one")
    protocol.send(b"two")
    assert transport.writes == []  # until the end of this turn of the loop
    await asyncio.sleep(0)
    assert transport.writes == [wire_frame(b"one") + wire_frame(b"two")]
    protocol.send(b"three")
    await asyncio.sleep(0)
    assert transport.writes[1:] == [wire_frame(b"three")]


async def test_a_close_frame_goes_after_the_frames_sent_before_it() -> None:
    protocol, transport = opened()
    protocol.send(b"last")
    protocol.close(1000)
    assert transport.writes[0] == wire_frame(b"last")
    assert parse(transport.writes[1]).opcode is Opcode.CLOSE
    protocol.send(b"after the close")  # never written
    await asyncio.sleep(0)
    assert len(transport.writes) == 2


def test_frames_pending_on_a_loop_that_closed_do_not_hold_up_the_next_loops() -> None:
    gone = asyncio.new_event_loop()
    protocol, _ = opened(gone)
    protocol.send(b"never written")  # its end of turn never comes
    gone.close()

    async def next_loop() -> list[bytes]:
        protocol, transport = opened()
        protocol.send(b"written")
        await asyncio.sleep(0)
        return transport.writes

    assert asyncio.run(next_loop()) == [wire_frame(b"written")]
