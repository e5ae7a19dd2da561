"""HTTP/1.1 with the bounds an unauthenticated peer must not get past, proxy or not.

uvicorn's httptools protocol parses requests and runs the app; it bounds neither the
request head (a 1 MB header line was answered 200, and 20 incomplete 10 MB heads held
10 MB each for minutes) nor the time a peer takes to send it or its body. Subclassed
here, per connection (:class:`~server.config.HttpLimits`):

- the head: at most ``max_head_bytes`` (counted as they arrive, so an endless header
  line is cut once the bound is passed, give or take one socket read) and
  ``max_headers`` fields, else **431**; complete within ``head_timeout_s`` of its first
  byte (or of the connection, or of the previous response), else **408** (a connection
  that sent nothing is just closed);
- the body: no silence longer than ``body_timeout_s``, and from then on an average of
  at least ``min_body_rate`` bytes/s, else **408**. Time the app itself makes the
  peer wait (reading paused while it consumes) does not count;
- a response sent before its request's body was read (413, 401, 403... before the
  body) closes the connection instead of reading and discarding the rest: the answer
  goes out, then a half-close (FIN), then whatever the peer still sends for up to
  ``LINGER_S`` is dropped unread and the socket closed. Closing at once could reset
  the connection before the peer read the answer (RFC 9112 9.6).

States of a connection, one at a time: ``idle`` (between requests), ``head``,
``body``, ``waiting`` (the request is complete; the app answers), ``lingering``,
``upgraded`` (handed to :mod:`server.websocket`, nothing here runs any more).
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any, cast

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from protocol.errors import ErrorCode

from .config import HttpLimits
from .node import NodeApp
from .websocket import PATH, WebSocketProtocol, fast_accept

__all__ = ["LINGER_S", "BoundedHttpProtocol", "FirstRequestProtocol"]

LINGER_S = 2.0  # after a response that did not wait for its body


class _TooManyHeaders(Exception):
    pass


class BoundedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol under :class:`~server.config.HttpLimits`."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits: HttpLimits = cast(NodeApp, config.app).settings.http
        self._state = "idle"
        self._head_bytes = 0
        self._headers = 0
        self._timer: asyncio.TimerHandle | None = None
        self._body_started = 0.0
        self._body_last = 0.0
        self._body_bytes = 0

    # -- connection

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.limits.head_timeout_s, self._head_late)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._state = "closed"
        super().connection_lost(exc)

    def eof_received(self) -> None:
        if self._state == "lingering":
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        state = self._state
        if state == "lingering":
            return  # dropped unread: the answer is out, the socket closes soon
        if state == "idle":
            # uvicorn just stopped its keep-alive timer: the head's own clock starts.
            self._state = state = "head"
            self._head_bytes = 0
            self._arm(self.limits.head_timeout_s, self._head_late)
        if state == "head":
            self._head_bytes += len(data)
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, _TooManyHeaders):
                self._refuse(431, ErrorCode.TOO_LARGE, "too many header fields")
                return
            self._refuse(400, ErrorCode.BAD_FRAME, "invalid HTTP request")
            return
        except httptools.HttpParserError:
            self._refuse(400, ErrorCode.BAD_FRAME, "invalid HTTP request")
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self._disarm()
                self._state = "upgraded"
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if self._state == "head" and self._head_bytes > self.limits.max_head_bytes:
            self._refuse(
                431, ErrorCode.TOO_LARGE, f"request head over {self.limits.max_head_bytes} bytes"
            )

    def handle_websocket_upgrade(self) -> None:
        """Hand the socket to :class:`~server.websocket.WebSocketProtocol`. The
        ordinary handshake is answered from what httptools parsed (:func:`fast_accept`);
        anything else is passed on as bytes, as uvicorn does, for websockets to parse
        and answer."""
        if not issubclass(self.ws_protocol_class, WebSocketProtocol):  # type: ignore[arg-type]
            super().handle_websocket_upgrade()
            return
        response = fast_accept(
            self.scope["method"],
            self.scope["http_version"],
            self.url,
            self.headers,
            cast(NodeApp, self.config.app),
        )
        if response is None:
            super().handle_websocket_upgrade()
            return
        self.connections.discard(self)
        protocol = WebSocketProtocol(
            self.config, self.server_state, self.app_state, self.loop, accepted=True
        )
        protocol.connection_made(self.transport)
        self.transport.set_protocol(protocol)
        protocol.accepted(response)

    # -- parser callbacks

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._headers = 0
        if self._state != "head":  # pipelined: this request's clock starts now
            self._state = "head"
            self._head_bytes = 0
            self._arm(self.limits.head_timeout_s, self._head_late)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers += 1
        if self._headers > self.limits.max_headers:
            raise _TooManyHeaders
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm()
        has_body = any(
            (name == b"content-length" and value.strip() not in (b"", b"0"))
            or name == b"transfer-encoding"
            for name, value in self.headers
        )
        if has_body and not (self.parser.should_upgrade() and self._should_upgrade()):
            self._state = "body"
            now = self.loop.time()
            self._body_started = self._body_last = now
            self._body_bytes = 0
            self._arm(self.limits.body_timeout_s, self._body_check)
        else:
            self._state = "waiting"
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        self._body_last = self.loop.time()
        self._body_bytes += len(body)
        super().on_body(body)

    def on_message_complete(self) -> None:
        if self._state == "body":
            self._disarm()
            self._state = "waiting"
        super().on_message_complete()

    def on_response_complete(self) -> None:
        if not self.pipeline:  # else the state is a later (pipelined) request's
            if self._state == "body":  # answered before its body came: do not read it
                self.server_state.total_requests += 1
                self._linger()
                return
            if self._state == "waiting":
                self._state = "idle"
        super().on_response_complete()

    # -- timers

    def _arm(self, delay: float, callback: Any) -> None:
        self._disarm()
        self._timer = self.loop.call_later(delay, callback)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _head_late(self) -> None:
        self._timer = None
        if self._state not in ("idle", "head") or self.transport.is_closing():
            return
        if self._state == "idle" or self._head_bytes == 0:
            self.transport.close()  # nothing asked: nothing to answer
            return
        self._refuse(408, ErrorCode.BAD_FRAME, "request head not received in time")

    def _body_check(self) -> None:
        self._timer = None
        if self._state != "body" or self.transport.is_closing():
            return
        now, limits = self.loop.time(), self.limits
        if self.flow.read_paused:  # the app is behind, not the peer
            self._body_last = now
            self._body_started += limits.body_timeout_s / 4
        silent = now - self._body_last
        elapsed = now - self._body_started - limits.body_timeout_s
        if silent >= limits.body_timeout_s or (
            elapsed > 0 and self._body_bytes < elapsed * limits.min_body_rate
        ):
            self._refuse(408, ErrorCode.BAD_FRAME, "request body not received in time")
            return
        self._arm(limits.body_timeout_s / 4, self._body_check)

    # -- refusing

    def _refuse(self, status: int, code: ErrorCode, message: str) -> None:
        """Answer ``status`` with the usual JSON error body, then close. A request the
        app is already handling is left to it: the app answers, and the connection
        closes after that answer (its body is not read)."""
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete and self._state == "body":
            self.cycle.keep_alive = False
            self.cycle.disconnected = True  # the app's receive() now sees a disconnect
            self.cycle.message_event.set()
        body = json.dumps({"code": code.value, "message": message}).encode()
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [
            b"content-type: application/json\r\n",
            b"content-length: " + str(len(body)).encode() + b"\r\n",
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + body)
        self._linger()

    def _linger(self) -> None:
        """Half-close after the answer, drop what still comes, close after ``LINGER_S``
        (or at the peer's EOF)."""
        self._state = "lingering"
        self._disarm()
        if self.transport.is_closing():
            return
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.flow.resume_reading()
        self._timer = self.loop.call_later(LINGER_S, self.transport.close)


# What FirstRequestProtocol parses itself: a request line for PATH (its query in RFC 3986's
# query characters) and header lines of a token, a colon and visible ASCII. A subset of
# what httptools and websockets accept; anything else goes to them.
_REQUEST_LINE = re.compile(
    rb"GET (" + re.escape(PATH.encode()) + rb"(?:\?[A-Za-z0-9\-._~!$&'()*+,;=:@/?%]*)?) HTTP/1\.1"
)
_HEADER_LINE = re.compile(
    rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*([\x21-\x7e](?:[\x20-\x7e\t]*[\x21-\x7e])?)?[ \t]*"
)
_GET_PATH = b"GET " + PATH.encode()


class FirstRequestProtocol(asyncio.Protocol):
    """A connection's first protocol: answers an ordinary ``/v1/ws`` upgrade that
    arrives whole in the first read (what every client sends) and hands anything else,
    as the bytes it received, to :class:`BoundedHttpProtocol`. uvicorn's protocol set-up
    (a parser, the scope's addresses from two socket calls, loggers, flow control) and
    its callbacks per header were a sixth of a connection's CPU in a connection storm,
    for a request that needs none of them.

    The upgrade is decided by :func:`~server.websocket.fast_accept`, as when httptools
    parsed it; the head only gets here if it is within the :class:`HttpLimits` bounds
    and strictly well-formed (else the long way answers, errors included). Until the
    first byte, the bounded protocol's rule holds: a connection that sends nothing
    within ``head_timeout_s`` is closed. From the first byte on, the bounded
    protocol's head clock starts as it always did (at the first byte)."""

    __slots__ = ("_app", "_app_state", "_config", "_loop", "_server_state", "_timer", "transport")

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if not config.loaded:
            config.load()
        self._config = config
        self._app = cast(NodeApp, config.app)
        self._server_state = server_state
        self._app_state = app_state
        self._loop = _loop or asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self._server_state.connections.add(cast(Any, self))
        self._timer = self._loop.call_later(
            self._app.settings.http.head_timeout_s, self.transport.close
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self._server_state.connections.discard(cast(Any, self))
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def shutdown(self) -> None:
        """uvicorn's shutdown: nothing asked yet, nothing to answer."""
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        transport = self.transport
        assert transport is not None
        response = self._upgrade(data) if data.startswith(_GET_PATH) else None
        self._server_state.connections.discard(cast(Any, self))
        if response is None:
            http = BoundedHttpProtocol(
                self._config, self._server_state, self._app_state, self._loop
            )
            transport.set_protocol(http)
            http.connection_made(transport)
            http.data_received(data)
            return
        protocol = WebSocketProtocol(
            self._config, self._server_state, self._app_state, self._loop, accepted=True
        )
        protocol.connection_made(transport)
        transport.set_protocol(protocol)
        protocol.accepted(response)

    def _upgrade(self, data: bytes) -> bytes | None:
        """The 101 for ``data``, if it is exactly one complete ordinary upgrade request
        within the head bounds; else None."""
        limits = self._app.settings.http
        end = data.find(b"\r\n\r\n")
        if end < 0 or end + 4 != len(data) or len(data) > limits.max_head_bytes:
            return None
        lines = data[:end].split(b"\r\n")
        if len(lines) - 1 > limits.max_headers:
            return None
        first = _REQUEST_LINE.fullmatch(lines[0])
        if first is None:
            return None
        headers: list[tuple[bytes, bytes]] = []
        for line in lines[1:]:
            field = _HEADER_LINE.fullmatch(line)
            if field is None:
                return None
            name, value = field.groups()
            headers.append((name.lower(), value or b""))
        return fast_accept("GET", "1.1", first.group(1), headers, self._app)
