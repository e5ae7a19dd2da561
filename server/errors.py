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
    """``status`` overrides the code's HTTP status where REST needs a finer one (411
    Length Required is a ``bad_frame``); WebSocket error frames carry only the code."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        retry_after: float | None = None,
        *,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self._status = status

    @property
    def status(self) -> int:
        return self._status or HTTP_STATUS[self.code]
