"""A connection's first protocol (:class:`server.http_protocol.FirstRequestProtocol`):
an ordinary ``/v1/ws`` upgrade that arrives whole is answered at once, as
``fast_accept`` answers it; every other first read goes, byte for byte, to the bounded
HTTP protocol, which answers as it always did."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
from types import SimpleNamespace
from typing import Any, cast

import pytest

from harness import ServerUnderTest
from protocol import SUBPROTOCOL
from server import http_protocol
from server.config import HttpLimits
from server.http_protocol import FirstRequestProtocol
from server.websocket import WebSocketProtocol, fast_accept

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455's example
ACCEPT = base64.b64encode(hashlib.sha1(KEY + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
FIELDS = [
    b"Host: chat.example:8443",
    b"Connection: Upgrade",
    b"Upgrade: websocket",
    b"Sec-WebSocket-Key: " + KEY,
    b"Sec-WebSocket-Version: 13",
    b"Sec-WebSocket-Protocol: " + SUBPROTOCOL.encode(),
]


def head(fields: list[bytes] = FIELDS, line: bytes = b"GET /v1/ws HTTP/1.1") -> bytes:
    return b"\r\n".join([line, *fields]) + b"\r\n\r\n"


class _Transport:
    def __init__(self) -> None:
        self.written = b""
        self.closed = False
        self.protocol: asyncio.BaseProtocol | None = None

    def write(self, data: bytes) -> None:
        self.written += data

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


class _Bounded:
    """Stands in for BoundedHttpProtocol: records what it is handed."""

    def __init__(self, *args: Any) -> None:
        self.made = False
        self.data: list[bytes] = []

    def connection_made(self, transport: Any) -> None:
        self.made = True

    def data_received(self, data: bytes) -> None:
        self.data.append(data)


@pytest.fixture
def first(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(http_protocol, "BoundedHttpProtocol", _Bounded)
    monkeypatch.setattr(WebSocketProtocol, "_open", lambda self: None)  # no gateway here

    def make(
        *, draining: bool = False, limits: HttpLimits | None = None
    ) -> tuple[FirstRequestProtocol, _Transport, set[Any]]:
        app = SimpleNamespace(
            live=SimpleNamespace(draining=draining),
            settings=SimpleNamespace(allowed_origins=(), http=limits or HttpLimits()),
        )
        config = SimpleNamespace(loaded=True, app=app)
        state = SimpleNamespace(connections=set())
        protocol = FirstRequestProtocol(cast(Any, config), cast(Any, state), {})
        transport = _Transport()
        protocol.connection_made(cast(Any, transport))
        return protocol, transport, state.connections

    return make


async def test_an_ordinary_upgrade_is_answered_at_once(first: Any) -> None:
    protocol, transport, connections = first()
    assert connections == {protocol}
    protocol.data_received(head())
    assert isinstance(transport.protocol, WebSocketProtocol)
    assert connections == {transport.protocol}  # uvicorn's shutdown finds the WebSocket
    assert transport.written.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert b"\r\nSec-WebSocket-Accept: " + ACCEPT + b"\r\n" in transport.written
    assert b"\r\nSec-WebSocket-Protocol: " + SUBPROTOCOL.encode() + b"\r\n" in transport.written


async def test_what_it_parses_is_what_fast_accept_is_given(first: Any) -> None:
    """Names of any case, whitespace around values, a query, an empty field: the
    answer is fast_accept's for the fields as httptools would have given them."""
    fields = [b"hOsT:chat.example:8443  ", b"CONNECTION: \tkeep-alive, Upgrade", *FIELDS[2:]]
    fields.append(b"X-Empty:")
    protocol, transport, _ = first()
    protocol.data_received(head(fields, b"GET /v1/ws?v=1&t=%20x HTTP/1.1"))
    parsed = [
        (b"host", b"chat.example:8443"),
        (b"connection", b"keep-alive, Upgrade"),
        *((name.lower(), value) for name, _, value in (f.partition(b": ") for f in FIELDS[2:])),
        (b"x-empty", b""),
    ]
    app = cast(Any, protocol)._app
    expected = fast_accept("GET", "1.1", b"/v1/ws?v=1&t=%20x", parsed, app)
    assert expected is not None and transport.written == expected


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"GET /healthz HTTP/1.1\r\nHost: node\r\n\r\n", id="another path"),
        pytest.param(head(line=b"GET /v1/wsx HTTP/1.1"), id="a longer path"),
        pytest.param(head(line=b"GET /v1/ws HTTP/1.0"), id="HTTP/1.0"),
        pytest.param(head(line=b"GET /v1/ws?a=<b> HTTP/1.1"), id="not a query character"),
        pytest.param(head(line=b"GET  /v1/ws HTTP/1.1"), id="two spaces"),
        pytest.param(head()[:-2], id="incomplete head"),
        pytest.param(head()[:40], id="a first fragment"),
        pytest.param(head() + b"\x88\x80\x00\x00\x00\x00", id="bytes after the head"),
        pytest.param(head([*FIELDS, b" folded"]), id="obs-fold"),
        pytest.param(head([*FIELDS, b"X-Bad : v"]), id="space before the colon"),
        pytest.param(head([*FIELDS, b"X-Bad: caf\xc3\xa9"]), id="non-ASCII value"),
        pytest.param(head([*FIELDS, b"X-Bad: a\x00b"]), id="control character"),
        pytest.param(head([*FIELDS, b"Content-Length: 0"]), id="a body announced"),
        pytest.param(head(FIELDS[1:]).replace(b"\r\n", b"\n"), id="bare LF"),
        pytest.param(head(FIELDS[:-1]), id="our subprotocol not offered"),
        pytest.param(head([*FIELDS, b"Origin: https://evil.example"]), id="a foreign origin"),
    ],
)
async def test_anything_else_goes_to_the_bounded_protocol_unchanged(
    first: Any, data: bytes
) -> None:
    protocol, transport, connections = first()
    protocol.data_received(data)
    bounded = transport.protocol
    assert isinstance(bounded, _Bounded)
    assert bounded.made and bounded.data == [data]
    assert transport.written == b""
    assert protocol not in connections


async def test_the_head_bounds_send_it_the_long_way(first: Any) -> None:
    many = [*FIELDS, *(b"X-%d: v" % i for i in range(4))]
    protocol, transport, _ = first(limits=HttpLimits(max_headers=len(many) - 1))
    protocol.data_received(head(many))
    assert isinstance(transport.protocol, _Bounded)  # which answers 431
    protocol, transport, _ = first(limits=HttpLimits(max_head_bytes=len(head()) - 1))
    protocol.data_received(head())
    assert isinstance(transport.protocol, _Bounded)


async def test_a_draining_node_sends_it_the_long_way(first: Any) -> None:
    protocol, transport, _ = first(draining=True)
    protocol.data_received(head())
    assert isinstance(transport.protocol, _Bounded)  # which answers 403


async def test_shutdown_closes_a_connection_that_asked_nothing(first: Any) -> None:
    protocol, transport, connections = first()
    protocol.shutdown()
    assert transport.closed
    protocol.connection_lost(None)
    assert protocol not in connections


async def _exchange(server: ServerUnderTest, *parts: bytes) -> bytes:
    """Send ``parts`` (one write each), then a masked close frame; return all the
    node answered up to its EOF."""
    port = int(server.url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for part in parts:
            writer.write(part)
            await writer.drain()
        answer = await reader.readuntil(b"\r\n\r\n")
        if answer.startswith(b"HTTP/1.1 101 "):
            mask = os.urandom(4)
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate((1000).to_bytes(2, "big")))
            writer.write(b"\x88\x82" + mask + payload)
            await writer.drain()
        async with asyncio.timeout(10):
            answer += await reader.read()
        return answer
    finally:
        writer.close()


async def test_a_node_answers_the_upgrade_whole_or_in_pieces(server: ServerUnderTest) -> None:
    """One read (the first protocol answers) or several (the bounded protocol and
    websockets do): the same 101, and a WebSocket that answers a close."""
    fields = [b"Host: 127.0.0.1", *FIELDS[1:]]
    whole = await _exchange(server, head(fields))
    data = head(fields)
    pieces = await _exchange(server, data[:20], data[20:])
    for answer in (whole, pieces):
        assert answer.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
        assert b"\r\nSec-WebSocket-Accept: " + ACCEPT + b"\r\n" in answer
        assert answer.endswith(b"\x88\x02\x03\xe8")  # our close frame: 1000
