"""Errors the server answers with, and their one mapping to HTTP statuses.

Handlers raise :class:`ApiError`; the WebSocket gateway turns it into an ``error``
frame and the REST layer into a JSON body ``{"code", "message"}`` with the status
below (plus ``field`` and ``reason`` when known, SPEC.md §8.1). A storage refusal
(:mod:`storage.errors`) a handler lets through is answered by :func:`from_storage`,
the one table from storage errors to answers. Messages are written
for the peer and never carry internals; clients show their own words, chosen by code,
field and reason, never the English message.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from protocol.errors import ErrorCode
from storage import errors as db

__all__ = ["HTTP_STATUS", "ApiError", "bad_field", "bad_request", "from_storage"]

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


class _Answer(NamedTuple):
    code: ErrorCode
    message: str
    reason: str | None = None


_NOT_YOURS = "field 'attachments' names a file that is not a ready document you uploaded"
_NUMBER_TAKEN = "this card's RPPS/ADELI number already verifies another account"

# Storage refusals and their answers, most specific first (the first class the error
# is an instance of answers).
_FROM_STORAGE: tuple[tuple[type[db.StorageError], _Answer], ...] = (
    (db.UnusableAttachment, _Answer(ErrorCode.BAD_FRAME, _NOT_YOURS)),
    (
        db.SlotPartNotOwned,
        _Answer(ErrorCode.BAD_FRAME, "field 'slots' names a place or a motive that is not yours"),
    ),
    (
        db.MotiveNotOffered,
        _Answer(ErrorCode.NOT_FOUND, "field 'motive' is not a motive of this slot"),
    ),
    (
        db.NoSuchDocument,
        _Answer(ErrorCode.BAD_FRAME, "field 'document': photos missing or changed"),
    ),
    (db.NoSuchSlot, _Answer(ErrorCode.NOT_FOUND, "no such slot")),
    (db.NoSuchProfile, _Answer(ErrorCode.NOT_FOUND, "no such profile")),
    (db.NoSuchRoom, _Answer(ErrorCode.NOT_FOUND, "no such room")),
    (db.NoSuchBackup, _Answer(ErrorCode.NOT_FOUND, "no key backup", reason="no_backup")),
    (db.NoSuchUser, _Answer(ErrorCode.NOT_FOUND, "no such account or device")),
    (db.NoSuchRequest, _Answer(ErrorCode.NOT_FOUND, "no such verification request")),
    (db.NoSuchOrganisation, _Answer(ErrorCode.NOT_FOUND, "no such organisation")),
    (db.NotFound, _Answer(ErrorCode.NOT_FOUND, "the content is missing")),
    (
        db.SlotTaken,
        _Answer(ErrorCode.CONFLICT, "this slot is already booked", reason="slot_taken"),
    ),
    (
        db.EmailTaken,
        _Answer(
            ErrorCode.CONFLICT, "an account already exists for this e-mail", reason="email_taken"
        ),
    ),
    (db.NumberTaken, _Answer(ErrorCode.CONFLICT, _NUMBER_TAKEN, reason="number_taken")),
    (
        db.LinkUnusable,
        _Answer(ErrorCode.CONFLICT, "this sign-up link was used already", reason="link_used"),
    ),
    (
        db.RequestPending,
        _Answer(
            ErrorCode.CONFLICT,
            "a verification request is pending already",
            reason="request_pending",
        ),
    ),
    (
        db.BackupReplaced,
        _Answer(
            ErrorCode.CONFLICT,
            "field 'version' is not the current key backup",
            reason="backup_replaced",
        ),
    ),
    (db.BackupFull, _Answer(ErrorCode.TOO_LARGE, "the key backup is full")),
    (db.AlreadyVerified, _Answer(ErrorCode.CONFLICT, "this account is verified already")),
    (db.AlreadyDecided, _Answer(ErrorCode.CONFLICT, "this request was decided already")),
    (db.Conflict, _Answer(ErrorCode.CONFLICT, "conflicting change, reload and retry")),
    (
        db.BadValue,
        _Answer(ErrorCode.BAD_FRAME, "a value cannot be stored (control character?)"),
    ),
)


def from_storage(exc: db.StorageError) -> ApiError:
    """The answer to a storage error: its refusal's, or 503 ``unavailable`` (retry in
    1 s) when the database failed."""
    if isinstance(exc, db.RoomBeingCreated):  # another node is at it: retry finds it
        return ApiError(ErrorCode.UNAVAILABLE, "the room is being created, retry", 0.1)
    for kind, answer in _FROM_STORAGE:
        if isinstance(exc, kind):
            return ApiError(answer.code, answer.message, reason=answer.reason)
    return ApiError(ErrorCode.UNAVAILABLE, "storage unavailable, retry", 1.0)
