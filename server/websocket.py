"""The WebSocket transport of ``/v1/ws``: an :class:`asyncio.Protocol` around the
sans-I/O :class:`websockets.server.ServerProtocol`, with no ASGI in between.

uvicorn parses the HTTP upgrade request and hands the socket over (``Config(ws=...)``);
from then on bytes come in through :meth:`WebSocketProtocol.data_received` and go out
through ``transport.write``. The connection's logic is :class:`server.gateway.Connection`,
driven by calls, not tasks. Going through ASGI cost, per connection, a task, a queue and
Starlette's wrapper, and per frame two dicts and two awaits: on ``loadtest idle`` that was
37.5 KiB per idle connection and on ``loadtest bench`` ~26 % of the server's CPU.

Invariants:
- a message frame is written only while the WebSocket is OPEN, never after our close
  frame;
- while the transport is paused (the peer reads slower than we write), frames wait in
  ``_backlog``, in order; the gateway closes a peer whose backlog grows too long;
- a server-to-client frame is unmasked (RFC 6455 5.1), so one encoding serves every
  recipient of a fan-out (:func:`wire_frame`);
- message frames sent in one turn of the event loop wait in ``_pending`` and go out
  in one write at the end of the turn (a group commit's fan-out gives a connection
  several frames in one turn: one write, one syscall, instead of one each); anything
  else written to the transport first writes what is pending, so the order holds.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import hashlib
import logging
import re
import struct
import time
from collections import deque
from typing import Any, cast

from uvicorn.config import Config
from uvicorn.server import ServerState
from websockets.frames import Frame, Opcode
from websockets.http11 import MAX_LINE_LENGTH, MAX_NUM_HEADERS, Request
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.typing import Subprotocol

from protocol import SUBPROTOCOL, CloseCode
from protocol.limits import MAX_FRAME

from .gateway import Connection
from .live import LiveConnections
from .node import NodeApp
from .origin import origin_allowed

__all__ = [
    "PATH",
    "WS_MAX_MESSAGE",
    "WebSocketProtocol",
    "fast_accept",
    "run_keepalive",
    "wire_frame",
]

log = logging.getLogger("confrere.websocket")
_ws_log = logging.getLogger("websockets.server")  # what ServerProtocol would look up each time

PATH = "/v1/ws"
# Messages up to this size reach the protocol layer, which answers a frame over
# MAX_FRAME with a too_large error; beyond it the WebSocket layer closes with 1009.
WS_MAX_MESSAGE = 4 * MAX_FRAME
CLOSE_TIMEOUT_S = 5.0  # for the peer's answer to our close frame


class _FrameCache:
    """The last payload framed, so that a fan-out frames each message once: the hub
    pushes the same ``bytes`` object to every recipient, one after the other."""

    __slots__ = ("payload", "wire")

    def __init__(self) -> None:
        self.payload = b""
        self.wire = b"\x82\x00"


_cache = _FrameCache()


class _Corked:
    """The connections with frames pending in this turn of ``loop`` (see the
    invariants). Kept with its loop: should a loop close before its turn ended (a test's
    loop, say), the next loop starts a list of its own rather than wait on that one."""

    __slots__ = ("loop", "protocols")

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.protocols: list[WebSocketProtocol] = []

    def add(self, protocol: WebSocketProtocol, loop: asyncio.AbstractEventLoop) -> None:
        if self.loop is not loop:
            self.loop, self.protocols = loop, []
        if not self.protocols:
            loop.call_soon(self.uncork)
        self.protocols.append(protocol)

    def uncork(self) -> None:
        protocols, self.protocols = self.protocols, []
        for protocol in protocols:
            try:
                protocol._uncork()
            except Exception:  # one broken transport must not hold the others' frames
                log.exception("write failed")


_corked = _Corked()


_PATH = PATH.encode()
_PATH_QUERY = _PATH + b"?"
_SUBPROTOCOL = SUBPROTOCOL.encode()
# websockets' own bounds on a request line and a header line (both "name: value\r\n").
# Kept well inside them: a request near a bound goes the long way, which decides exactly.
_MAX_TARGET = MAX_LINE_LENGTH - 64
_MAX_FIELD = MAX_LINE_LENGTH - 64
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 1.3
_KEY = re.compile(rb"[A-Za-z0-9+/]{22}==")  # base64 of 16 bytes, as websockets checks it
_TOKENS = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+(?:[ \t]*,[ \t]*[!#$%&'*+\-.^_`|~0-9A-Za-z]+)*")
_OPEN_HEAD = (
    b"HTTP/1.1 101 Switching Protocols\r\nDate: %s\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\nSec-WebSocket-Protocol: "
    + SUBPROTOCOL.encode()
    + b"\r\n\r\n"
)


class _DateCache:
    """The ``Date`` header, formatted once a second rather than once a handshake."""

    __slots__ = ("second", "value")

    def __init__(self) -> None:
        self.second = -1
        self.value = b""

    def now(self) -> bytes:
        second = int(time.time())
        if second != self.second:
            self.second = second
            self.value = email.utils.formatdate(second, usegmt=True).encode()
        return self.value


_date = _DateCache()


def _token_list(value: bytes) -> list[bytes] | None:
    """A comma-separated list of HTTP tokens; None if it is not one."""
    value = value.strip(b" \t")
    if _TOKENS.fullmatch(value) is None:
        return None
    return [token.strip(b" \t") for token in value.split(b",")]


def fast_accept(
    method: str,
    http_version: str,
    target: bytes,
    headers: list[tuple[bytes, bytes]],
    app: NodeApp,
) -> bytes | None:
    """The 101 response to an upgrade request as uvicorn's parser left it (names
    lower-cased), if it is the ordinary kind: ``GET /v1/ws`` over HTTP/1.1, one valid
    key, version 13, our subprotocol offered, its origin allowed, the node not
    draining. Then the request is not parsed a second time by websockets (that cost
    about a fifth of a connection's CPU). Anything else returns None and goes the
    long way (:meth:`WebSocketProtocol._handshake`), which answers it as websockets
    does, errors included; the two ways accept exactly the same requests."""
    if method != "GET" or http_version != "1.1" or app.live.draining:
        return None
    if target != _PATH and not (target.startswith(_PATH_QUERY) and target.isascii()):
        return None
    if len(headers) > MAX_NUM_HEADERS or len(target) > _MAX_TARGET:
        return None
    key = version = origin = host = None
    connection_upgrade = False
    upgrades = 0
    offered = False
    for name, value in headers:
        if len(name) + len(value) > _MAX_FIELD:
            return None
        if name == b"sec-websocket-key":
            if key is not None or _KEY.fullmatch(value) is None:
                return None
            key = value
        elif name == b"sec-websocket-version":
            if version is not None:
                return None
            version = value
        elif name == b"connection":
            tokens = _token_list(value)
            if tokens is None:
                return None
            connection_upgrade = connection_upgrade or any(t.lower() == b"upgrade" for t in tokens)
        elif name == b"upgrade":
            upgrades += 1
            if value.strip(b" \t").lower() != b"websocket":
                return None
        elif name == b"sec-websocket-protocol":
            tokens = _token_list(value)
            if tokens is None:
                return None
            offered = offered or _SUBPROTOCOL in tokens
        elif name == b"origin":
            if origin is not None or not value.isascii():
                return None
            origin = value
        elif name == b"host":
            if host is not None or not value.isascii():
                return None
            host = value
        elif name == b"content-length" or name == b"transfer-encoding":
            return None  # websockets refuses a body; let it say so
    if key is None or version != b"13" or not connection_upgrade or upgrades != 1 or not offered:
        return None
    if origin is not None and not origin_allowed(
        origin.decode(), None if host is None else host.decode(), app.settings.allowed_origins
    ):
        return None
    accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
    return _OPEN_HEAD % (_date.now(), accept)


def wire_frame(payload: bytes) -> bytes:
    """One final, unmasked binary frame carrying ``payload``."""
    if payload is _cache.payload:
        return _cache.wire
    size = len(payload)
    if size < 126:
        header = bytes((0x82, size))
    elif size < 65536:
        header = struct.pack("!BBH", 0x82, 126, size)
    else:
        header = struct.pack("!BBQ", 0x82, 127, size)
    wire = header + payload
    _cache.payload, _cache.wire = payload, wire
    return wire


class WebSocketProtocol(asyncio.Protocol):
    """One WebSocket connection, from the upgrade request uvicorn passes on to the TCP
    close. Only ``PATH`` is served; any other path gets a 404."""

    __slots__ = (
        "_app",
        "_backlog",
        "_close_after_backlog",
        "_closer",
        "_connections",
        "_fragments",
        "_loop",
        "_pending",
        "_ping_sent_at",
        "_text",
        "_ws",
        "conn",
        "transport",
    )

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        accepted: bool = False,
    ) -> None:
        """``accepted``: the handshake was answered already (:func:`fast_accept`);
        else the upgrade request comes through :meth:`data_received`."""
        self._app = cast(NodeApp, config.app)
        self._connections = server_state.connections
        self._loop = _loop or asyncio.get_running_loop()
        self._ws = ServerProtocol(
            subprotocols=[Subprotocol(SUBPROTOCOL)],
            state=State.OPEN if accepted else State.CONNECTING,
            max_size=WS_MAX_MESSAGE,
            logger=_ws_log,
        )
        self.transport: asyncio.Transport | None = None
        self.conn: Connection | None = None
        self._backlog: deque[bytes] | None = None  # not None while writing is paused
        self._pending: list[bytes] | None = None  # frames of this turn (then None while paused)
        self._close_after_backlog: int | None = None
        self._closer: asyncio.TimerHandle | None = None
        self._fragments: list[bytes] | None = None
        self._text = False
        self._ping_sent_at = 0.0  # 0.0: no ping awaiting its pong

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self._connections.add(cast(Any, self))

    def data_received(self, data: bytes) -> None:
        ws = self._ws
        ws.receive_data(data)
        self._ping_sent_at = 0.0  # anything from the peer shows it is alive
        for event in ws.events_received():
            if isinstance(event, Frame):
                self._frame(event)
            elif isinstance(event, Request):
                self._handshake(event)
        self._flush()

    def eof_received(self) -> bool | None:
        self._ws.receive_eof()
        self._flush()
        return None  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self._connections.discard(cast(Any, self))
        if self._closer is not None:
            self._closer.cancel()
        self._backlog = self._pending = None
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.lost()

    def pause_writing(self) -> None:
        if self._backlog is None:
            self._backlog = deque()

    def resume_writing(self) -> None:
        backlog, self._backlog = self._backlog, None
        assert self.transport is not None
        while backlog:
            self.transport.write(backlog.popleft())
            if self._backlog is not None:  # paused again: keep the rest, in order
                backlog.extend(self._backlog)
                self._backlog = backlog
                return
        if self._close_after_backlog is not None:
            self._send_close(self._close_after_backlog)

    def accepted(self, response: bytes) -> None:
        """Write the 101 of :func:`fast_accept` (the ServerProtocol is OPEN already)
        and start the connection, as :meth:`_handshake` does after its 101."""
        assert self.transport is not None
        self.transport.write(response)
        self._open()

    # -- what the gateway calls

    @property
    def backlog(self) -> int:
        """Frames waiting for the peer to read what was written before them."""
        return 0 if self._backlog is None else len(self._backlog)

    def send(self, payload: bytes) -> None:
        """Write one binary message (or queue it while the peer is not reading)."""
        if self._ws.state is not State.OPEN or self._close_after_backlog is not None:
            return
        wire = wire_frame(payload)
        if self._backlog is not None:
            self._backlog.append(wire)
        elif self._pending is not None:
            self._pending.append(wire)
        else:
            self._pending = [wire]
            _corked.add(self, self._loop)

    def close(self, code: int, *, drop_backlog: bool = False) -> None:
        """Send a close frame after what is queued (or instead of it)."""
        if drop_backlog and self._backlog:
            self._backlog.clear()
        if self._backlog:
            self._close_after_backlog = code
        else:
            self._send_close(code)

    def pause_reading(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def keepalive(self, now: float, interval_s: float) -> None:
        """Ping, or fail the connection whose ping is still unanswered two rounds
        (``2 * interval_s``) later. Not one round: on a loaded machine a pong can
        wait longer than a round for the peer's or our own event loop, and closing then
        sends every such client into a reconnection storm (seen at 400,000 connections
        on 2 cores). Visits come every round, give or take the order shifting."""
        if self._ws.state is not State.OPEN:
            return
        if not self._ping_sent_at:
            self._ws.send_ping(b"")
            self._ping_sent_at = now
        elif now - self._ping_sent_at >= interval_s * 1.5:
            self._ws.fail(1011, "keepalive ping timeout")  # 1011: internal error
        else:
            return
        self._flush()

    def shutdown(self) -> None:
        """uvicorn's last step of a shutdown (after :mod:`server.shutdown` drained)."""
        if self._ws.state is State.OPEN:
            self._send_close(CloseCode.SERVICE_RESTART)
        if self.transport is not None:
            self.transport.close()

    # -- internals

    def _handshake(self, request: Request) -> None:
        ws, app = self._ws, self._app
        offered = ",".join(request.headers.get_all("Sec-WebSocket-Protocol"))
        if request.path.partition("?")[0] != PATH:
            response = ws.reject(404, "not found")
        elif (
            SUBPROTOCOL not in (p.strip() for p in offered.split(","))
            or app.live.draining
            or not origin_allowed(
                request.headers.get("Origin"),
                request.headers.get("Host"),
                app.settings.allowed_origins,
            )
        ):
            response = ws.reject(403, "forbidden")
        else:
            response = ws.accept(request)
        ws.send_response(response)
        if response.status_code == 101:
            self._open()

    def _open(self) -> None:
        node = self._app.node
        self.conn = Connection(self, node.services, node.settings, node.live, node.user_rates)
        self.conn.opened()

    def _frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        if opcode is Opcode.BINARY or opcode is Opcode.TEXT:
            if frame.fin:
                self._message(bytes(frame.data), opcode is Opcode.TEXT)
            else:
                self._fragments, self._text = [bytes(frame.data)], opcode is Opcode.TEXT
        elif opcode is Opcode.CONT and self._fragments is not None:
            self._fragments.append(bytes(frame.data))
            if frame.fin:
                data, self._fragments = b"".join(self._fragments), None
                self._message(data, self._text)
        # PING: ServerProtocol queued the pong. CLOSE: it queued our answer and the EOF.

    def _message(self, data: bytes, text: bool) -> None:
        if text:
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:  # RFC 6455 8.1: fail the connection with 1007
                self._ws.fail(1007, "invalid UTF-8 in a text message")
                return
        if self.conn is not None:
            self.conn.received(None if text else data)

    def _send_close(self, code: int) -> None:
        self._close_after_backlog = None
        if self._ws.state is State.OPEN:
            self._ws.send_close(code)
            self._flush()

    def _uncork(self) -> None:
        """Write the frames pending from this turn, in one write."""
        pending, self._pending = self._pending, None
        transport = self.transport
        if pending is None or transport is None or transport.is_closing():
            return
        transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def _flush(self) -> None:
        self._uncork()  # what was sent before goes out before (a close frame, say)
        transport = self.transport
        assert transport is not None
        if transport.is_closing():  # lost, or closed by us: nothing more goes out
            self._ws.data_to_send()
            return
        for data in self._ws.data_to_send():
            if data:
                transport.write(data)
            else:  # end of stream: a server closes the TCP connection
                transport.close()
        if self._closer is None and self._ws.close_expected():
            self._closer = self._loop.call_later(CLOSE_TIMEOUT_S, transport.abort)


async def run_keepalive(connections: LiveConnections, interval_s: float) -> None:
    """Ping every connection about every ``interval_s``: a twentieth of them each
    twentieth of the interval, so that 100,000 pings never land in one loop turn."""
    slices = 20
    loop = asyncio.get_running_loop()
    tick = 0
    while True:
        await asyncio.sleep(interval_s / slices)
        now = loop.time()
        for conn in connections.all()[tick % slices :: slices]:
            try:
                conn.keepalive(now, interval_s)
            except Exception:  # one broken connection must not stop everyone's pings
                log.exception("keepalive failed")
        tick += 1
