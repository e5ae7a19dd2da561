"""Exceptions of the Python SDK.

ConfrereError            root
├── ServerError          the server refused a request (``code`` from the protocol enum)
├── ConnectionLost       the connection dropped before the reply (retry is safe for
│                        idempotent requests; ``send`` retries by itself)
├── ClientClosed         the client was closed, or the server ended the session
├── AttachmentRefused    a file refused before anything was sent: empty, over 50 MiB,
│                        or not a PDF, JPEG or PNG by its first bytes
└── AttachmentCorrupt    a downloaded file failed its checks (decryption, size,
                         SHA-256, first bytes): nothing of it may be used
"""

from __future__ import annotations

from protocol.errors import ErrorCode

__all__ = [
    "AttachmentCorrupt",
    "AttachmentRefused",
    "ClientClosed",
    "ConfrereError",
    "ConnectionLost",
    "ServerError",
]


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


class AttachmentRefused(ConfrereError):
    pass


class AttachmentCorrupt(ConfrereError):
    pass
