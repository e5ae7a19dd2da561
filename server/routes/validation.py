"""Field checks for REST bodies; each failure is a 400 naming the field."""

from __future__ import annotations

import re
from typing import Any

from protocol.errors import ErrorCode

from ..errors import ApiError

__all__ = ["email", "optional_text", "text", "choice"]

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")


def _bad(field: str, why: str) -> ApiError:
    return ApiError(ErrorCode.BAD_FRAME, f"field '{field}' {why}")


def text(
    body: dict[str, Any], field: str, max_len: int = 100, min_len: int = 1, *, strip: bool = True
) -> str:
    value = body.get(field)
    if not isinstance(value, str):
        raise _bad(field, "is required and must be a string")
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


def choice(body: dict[str, Any], field: str, choices: tuple[str, ...]) -> str:
    value = body.get(field)
    if value not in choices:
        raise _bad(field, f"must be one of {', '.join(choices)}")
    assert isinstance(value, str)
    return value


def email(body: dict[str, Any], field: str = "email") -> str:
    """Trimmed and lower-cased, so addresses match whatever case they were typed in."""
    value = text(body, field, 254).lower()
    if not _EMAIL.match(value):
        raise _bad(field, "is not a valid e-mail address")
    return value
