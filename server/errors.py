"""Errors the server answers with, and their one mapping to HTTP statuses.

Handlers raise :class:`ApiError`; the WebSocket gateway turns it into an ``error``
frame and the REST layer into a JSON body ``{"code", "message"}`` with the status
below (plus ``field`` and ``reason`` when known, SPEC.md §8.1). Messages are written
for the peer and never carry internals; clients show their own words, chosen by code,
field and reason, never the English message.
"""

from __future__ import annotations

import re

from protocol.errors import ErrorCode

__all__ = ["HTTP_STATUS", "ApiError", "bad_field", "bad_request"]

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


# Every REST message about one field starts "field 'NAME' ..." (the validators write
# them so): the name is read from there when the raiser does not give it.
_FIELD = re.compile(r"^field '([A-Za-z_][A-Za-z0-9_.]*)'")


class ApiError(Exception):
    """``status`` overrides the code's HTTP status where REST needs a finer one (411
    Length Required is a ``bad_frame``); WebSocket error frames carry only the code.
    ``field``: the request field at fault (REST); ``reason``: a stable slug that tells
    apart the refusals a client explains differently (SPEC.md §8.1)."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        retry_after: float | None = None,
        *,
        status: int | None = None,
        field: str | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self._status = status
        named = _FIELD.match(message)
        self.field = field or (named.group(1) if named else None)
        self.reason = reason

    @property
    def status(self) -> int:
        return self._status or HTTP_STATUS[self.code]


def bad_request(message: str) -> ApiError:
    """A refused request (400) whose fault is not one field's."""
    return ApiError(ErrorCode.BAD_FRAME, message)


def bad_field(field: str, why: str, reason: str | None = None) -> ApiError:
    """A refused request field (400): the message reads "field 'NAME' WHY"."""
    return ApiError(ErrorCode.BAD_FRAME, f"field '{field}' {why}", field=field, reason=reason)
