"""Field checks for REST bodies; each failure is a 400 naming the field."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection
from typing import Any

from protocol.errors import ErrorCode
from protocol.fields import unfit_text
from storage.guests import normalise_email

from ..errors import ApiError

__all__ = ["email", "optional_text", "text", "choice"]

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")


def _bad(field: str, why: str) -> ApiError:
    return ApiError(ErrorCode.BAD_FRAME, f"field '{field}' {why}")


def text(
    body: dict[str, Any],
    field: str,
    max_len: int = 100,
    min_len: int = 1,
    *,
    strip: bool = True,
    multiline: bool = False,
) -> str:
    """A string field; single-line unless ``multiline`` (the text rule, SPEC.md §1.1:
    no control character, and no TAB, LF or CR in a single-line field)."""
    value = body.get(field)
    if not isinstance(value, str):
        raise _bad(field, "is required and must be a string")
    if unfit_text(value, multiline=multiline):
        raise _bad(field, "must not contain control characters")
    if strip:
        value = value.strip()
    if len(value) < min_len:
        raise _bad(field, f"must have at least {min_len} character(s)")
    if len(value) > max_len:
        raise _bad(field, f"must have at most {max_len} characters")
    return value


def optional_text(body: dict[str, Any], field: str, max_len: int = 100) -> str | None:
    if body.get(field) in (None, ""):
        return None
    return text(body, field, max_len)


def choice(body: dict[str, Any], field: str, choices: Collection[str]) -> str:
    """One of ``choices``; the type is checked first (a list is no set member: it would
    raise, not refuse)."""
    value = body.get(field)
    if not isinstance(value, str) or value not in choices:
        raise _bad(field, f"must be one of {', '.join(choices)}")
    return value


def email(body: dict[str, Any], field: str = "email") -> str:
    """Normalised as every stored address is (:func:`storage.guests.normalise_email`:
    trimmed, NFC, lower-cased), so addresses match however they were typed; an address
    with control or invisible characters (zero-width spaces...) is refused: it would
    look like another one."""
    raw = text(body, field, 254)
    if any(unicodedata.category(ch)[0] == "C" for ch in raw):
        raise _bad(field, "must not contain control or invisible characters")
    value = normalise_email(raw)
    if not _EMAIL.match(value):
        raise _bad(field, "is not a valid e-mail address")
    return value
