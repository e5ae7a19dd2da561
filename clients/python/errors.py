"""Exceptions of the Python SDK.

ConfrereError            root
├── ServerError          the server refused a request (``code`` from the protocol enum)
├── ConnectionLost       the connection dropped before the reply (retry is safe for
│                        idempotent requests; ``send`` retries by itself)
└── ClientClosed         the client was closed, or the server ended the session
"""

from __future__ import annotations

from protocol.errors import ErrorCode

__all__ = ["ClientClosed", "ConfrereError", "ConnectionLost", "ServerError"]


class ConfrereError(Exception):
    """Root of the SDK's exceptions."""


class ServerError(ConfrereError):
    def __init__(self, code: ErrorCode, message: str, retry_after: float | None = None) -> None:
        super().__init__(f"{code.value}: {message}")
        self.code = code
        self.message = message
        self.retry_after = retry_after


class ConnectionLost(ConfrereError):
    pass


class ClientClosed(ConfrereError):
    pass
