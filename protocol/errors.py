"""Error codes, close codes and the exception tree of the wire protocol.

Exception tree::

    ProtocolError                 root of everything this package raises
    ├── RemoteProtocolError       the peer sent something bad (answer with an error frame)
    │   └── BadFrame              undecodable or invalid frame
    └── LocalProtocolError        we misused our own API (a bug on our side)

Every ``RemoteProtocolError`` carries an :class:`ErrorCode`, a human message that never
echoes internals, and the request ``id`` it answers when one could be read, so the I/O
layer can turn it into an ``error`` frame without knowing why it happened.
"""

from __future__ import annotations

import enum

__all__ = [
    "BadFrame",
    "CloseCode",
    "ErrorCode",
    "LocalProtocolError",
    "ProtocolError",
    "RemoteProtocolError",
]


class ErrorCode(enum.StrEnum):
    """The one enum of error codes, shared by error frames and REST error bodies."""

    BAD_FRAME = "bad_frame"
    UNAUTHENTICATED = "unauthenticated"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    TOO_LARGE = "too_large"
    RATE_LIMITED = "rate_limited"
    IDENTITY_UNVERIFIED = "identity_unverified"
    CONFLICT = "conflict"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"


class CloseCode(enum.IntEnum):
    """WebSocket close codes the server uses (RFC 6455 section 7.4; 4000-4999 are ours)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    SERVICE_RESTART = 1012  # node shutting down: reconnect elsewhere
    TRY_AGAIN_LATER = 1013  # storage unavailable during hello: reconnect with backoff
    BAD_REQUEST = 4400  # too many bad frames on this connection
    UNAUTHENTICATED = 4401  # no valid hello in time, or hello refused
    FORBIDDEN = 4403  # Origin not allowed (sent as HTTP 403 before the upgrade)
    SLOW_CONSUMER = 4008  # outgoing buffer overflowed: reconnect and sync


class ProtocolError(Exception):
    """Root of the exceptions raised by :mod:`protocol`."""


class LocalProtocolError(ProtocolError):
    """Our own code used the protocol API wrongly; never sent to a peer."""


class RemoteProtocolError(ProtocolError):
    """The peer broke the protocol; ``code`` and ``message`` are safe to send back."""

    def __init__(self, code: ErrorCode, message: str, re: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.re = re


class BadFrame(RemoteProtocolError):
    """A frame that cannot be decoded or fails validation."""

    def __init__(
        self, message: str, re: int | None = None, code: ErrorCode = ErrorCode.BAD_FRAME
    ) -> None:
        super().__init__(code, message, re)
