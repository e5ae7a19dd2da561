"""Errors the server answers with, and their one mapping to HTTP statuses.

Handlers raise :class:`ApiError`; the WebSocket gateway turns it into an ``error``
frame and the REST layer into a JSON body ``{"code", "message"}`` with the status
below. Messages are written for the peer and never carry internals.
"""

from __future__ import annotations

from protocol.errors import ErrorCode

__all__ = ["HTTP_STATUS", "ApiError"]

HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.BAD_FRAME: 400,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.IDENTITY_UNVERIFIED: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.CONFLICT: 409,
    ErrorCode.TOO_LARGE: 413,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.INTERNAL: 500,
    ErrorCode.UNAVAILABLE: 503,
}


class ApiError(Exception):
    def __init__(self, code: ErrorCode, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after

    @property
    def status(self) -> int:
        return HTTP_STATUS[self.code]
