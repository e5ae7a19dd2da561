"""The upgrade answered from what httptools parsed (``fast_accept``) says exactly what
the long way (websockets parsing the request again) says, and leaves to the long way
every request that is not the ordinary kind."""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any, cast

import pytest

from protocol import SUBPROTOCOL
from server.node import NodeApp
from server.websocket import WebSocketProtocol, fast_accept

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455's example

ORDINARY: list[tuple[bytes, bytes]] = [
    (b"host", b"chat.example:8443"),
    (b"connection", b"Upgrade"),
    (b"upgrade", b"websocket"),
    (b"sec-websocket-key", KEY),
    (b"sec-websocket-version", b"13"),
    (b"sec-websocket-protocol", SUBPROTOCOL.encode()),
]


def _app(*, draining: bool = False, allowed: tuple[str, ...] = ()) -> NodeApp:
    return cast(
        NodeApp,
        SimpleNamespace(
            live=SimpleNamespace(draining=draining),
            settings=SimpleNamespace(allowed_origins=allowed),
        ),
    )


class _Transport:
    def __init__(self) -> None:
        self.written = b""
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written += data

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


class _NoGateway(WebSocketProtocol):
    def _open(self) -> None:
        pass  # the handshake is what is compared here


def _long_way(
    app: NodeApp,
    headers: list[tuple[bytes, bytes]],
    *,
    method: str = "GET",
    target: bytes = b"/v1/ws",
    version: str = "1.1",
) -> bytes:
    """What WebSocketProtocol answers when handed the request as bytes (uvicorn's way)."""
    config = SimpleNamespace(app=app)
    state = SimpleNamespace(connections=set())
    protocol = _NoGateway(cast(Any, config), cast(Any, state), {}, cast(Any, object()))
    transport = _Transport()
    protocol.connection_made(cast(Any, transport))
    head = [method.encode(), b" ", target, b" HTTP/", version.encode(), b"\r\n"]
    for name, value in headers:
        head += [name, b": ", value, b"\r\n"]
    protocol.data_received(b"".join([*head, b"\r\n"]))
    return transport.written


def _without_date(response: bytes) -> bytes:
    return re.sub(rb"(?i)\r\ndate: [^\r]*", b"", response)


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {b"connection": b"keep-alive, Upgrade"},
        {b"upgrade": b"WebSocket"},
        {b"sec-websocket-protocol": b"other.v2, " + SUBPROTOCOL.encode()},
        {b"sec-websocket-extensions": b"permessage-deflate; client_max_window_bits"},
        {b"origin": b"https://chat.example:8443"},
    ],
)
def test_the_ordinary_handshake_is_answered_as_websockets_answers_it(
    changes: dict[bytes, bytes],
) -> None:
    headers = [(n, changes.get(n, v)) for n, v in ORDINARY]
    headers += [(n, v) for n, v in changes.items() if n not in dict(ORDINARY)]
    app = _app()
    fast = fast_accept("GET", "1.1", b"/v1/ws", headers, app)
    assert fast is not None
    assert fast.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert b"\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in fast
    assert _without_date(fast) == _without_date(_long_way(app, headers))


def _with(changes: dict[bytes, bytes | None]) -> list[tuple[bytes, bytes]]:
    headers = [(n, changes.get(n, v)) for n, v in ORDINARY if changes.get(n, v) is not None]
    extra = [(n, v) for n, v in changes.items() if n not in dict(ORDINARY) and v is not None]
    return cast(list[tuple[bytes, bytes]], headers + extra)


@pytest.mark.parametrize(
    ("headers", "method", "target", "version", "app"),
    [
        (ORDINARY, "GET", b"/elsewhere", "1.1", _app()),
        (ORDINARY, "POST", b"/v1/ws", "1.1", _app()),
        (ORDINARY, "GET", b"/v1/ws", "1.0", _app()),
        (ORDINARY, "GET", b"/v1/ws", "1.1", _app(draining=True)),
        ([*ORDINARY, (b"sec-websocket-key", KEY)], "GET", b"/v1/ws", "1.1", _app()),
        (_with({b"sec-websocket-key": b"c2hvcnQ="}), "GET", b"/v1/ws", "1.1", _app()),
        (_with({b"sec-websocket-version": b"8"}), "GET", b"/v1/ws", "1.1", _app()),
        (_with({b"sec-websocket-protocol": b"other.v2"}), "GET", b"/v1/ws", "1.1", _app()),
        (_with({b"sec-websocket-protocol": None}), "GET", b"/v1/ws", "1.1", _app()),
        (_with({b"connection": b"keep-alive"}), "GET", b"/v1/ws", "1.1", _app()),
        (_with({b"connection": b"upgrade,,"}), "GET", b"/v1/ws", "1.1", _app()),
        (_with({b"origin": b"https://evil.example"}), "GET", b"/v1/ws", "1.1", _app()),
        (
            _with({b"origin": b"https://chat.example:8443"}),
            "GET",
            b"/v1/ws",
            "1.1",
            _app(allowed=("https://app.example",)),
        ),
        (_with({b"content-length": b"0"}), "GET", b"/v1/ws", "1.1", _app()),
        ([*ORDINARY, (b"origin", b"a"), (b"origin", b"b")], "GET", b"/v1/ws", "1.1", _app()),
    ],
)
def test_anything_else_goes_the_long_way(
    headers: list[tuple[bytes, bytes]], method: str, target: bytes, version: str, app: NodeApp
) -> None:
    assert fast_accept(method, version, target, headers, app) is None
