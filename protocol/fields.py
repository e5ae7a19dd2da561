"""Typed, bounded reads of one decoded msgpack map, for frame parsers.

A :class:`FieldReader` pops fields one by one; :meth:`FieldReader.done` then rejects any
field left over, so an unknown field is an error rather than silently ignored (servers)
or tolerated for forward compatibility (clients, ``strict=False``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .errors import BadFrame, ErrorCode
from .limits import MAX_ID

__all__ = ["FieldReader", "unfit_text"]

_MISSING = object()
# The text rule (SPEC.md §1.1): no control character (Unicode Cc: U+0000-U+001F,
# U+007F-U+009F) and no lone surrogate in any text field. Multi-line REST fields may
# hold TAB, LF and CR (``multiline``).
_UNFIT = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_UNFIT_MULTILINE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def unfit_text(value: str, *, multiline: bool = False) -> bool:
    """True if ``value`` breaks the text rule: a control character (other than TAB,
    LF and CR when ``multiline``) or a lone surrogate. PostgreSQL cannot store U+0000
    at all, so refusing at validation keeps both storage adapters in agreement."""
    return (_UNFIT_MULTILINE if multiline else _UNFIT).search(value) is not None


class FieldReader:
    """Reads fields out of ``data``; every failure raises :class:`BadFrame` naming the field."""

    __slots__ = ("_data", "_plain_text", "kind", "re")

    def __init__(
        self,
        data: dict[str, Any],
        kind: str,
        re: int | None,
        *,
        frame: bool = True,
        plain_text: bool = False,
    ) -> None:
        """``frame``: ``data`` is a whole frame, whose ``t``/``id``/``re`` the codec
        already read; nested maps (a room, a member) keep every key. ``plain_text``:
        strings must follow the text rule (:func:`unfit_text`), as the server requires
        of client frames."""
        self._data = dict(data)
        self._plain_text = plain_text
        if frame:
            for key in ("t", "id", "re"):
                self._data.pop(key, None)
        self.kind = kind
        self.re = re

    def _fail(self, message: str, code: ErrorCode = ErrorCode.BAD_FRAME) -> BadFrame:
        return BadFrame(f"{self.kind}: {message}", self.re, code)

    def _pop(self, name: str, required: bool) -> Any:
        value = self._data.pop(name, _MISSING)
        if value is _MISSING or value is None:
            if required:
                raise self._fail(f"missing field '{name}'")
            return None
        return value

    def str_(self, name: str, max_len: int = MAX_ID, *, required: bool = True) -> Any:
        value = self._pop(name, required)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self._fail(f"field '{name}' must be a string")
        if not value:
            raise self._fail(f"field '{name}' must not be empty")
        if len(value) > max_len:
            raise self._fail(f"field '{name}' is longer than {max_len} characters")
        if self._plain_text and unfit_text(value):
            raise self._fail(f"field '{name}' must not contain control characters")
        return value

    def choice(self, name: str, choices: tuple[str, ...], *, required: bool = True) -> Any:
        value = self.str_(name, max(len(c) for c in choices), required=required)
        if value is not None and value not in choices:
            raise self._fail(f"field '{name}' must be one of {', '.join(choices)}")
        return value

    def int_(
        self, name: str, lo: int, hi: int, *, required: bool = True, default: int | None = None
    ) -> Any:
        value = self._pop(name, required and default is None)
        if value is None:
            return default
        # bool is an int subclass in Python; msgpack keeps them distinct, so must we.
        if not isinstance(value, int) or isinstance(value, bool):
            raise self._fail(f"field '{name}' must be an integer")
        if not lo <= value <= hi:
            raise self._fail(f"field '{name}' must be between {lo} and {hi}")
        return value

    def bool_(self, name: str, *, required: bool = True) -> Any:
        value = self._pop(name, required)
        if value is None:
            return None
        if not isinstance(value, bool):
            raise self._fail(f"field '{name}' must be a boolean")
        return value

    def bytes_(
        self,
        name: str,
        max_len: int,
        *,
        required: bool = True,
        shape: tuple[str, Callable[[bytes], str | None]] | None = None,
    ) -> Any:
        """``shape``: (what the value must be, a check returning why it is not, or None),
        e.g. an end-to-end ciphertext (SPEC.md §11)."""
        value = self._pop(name, required)
        if value is None:
            return None
        if not isinstance(value, bytes):
            raise self._fail(f"field '{name}' must be binary")
        if len(value) > max_len:
            raise self._fail(f"field '{name}' exceeds {max_len} bytes", ErrorCode.TOO_LARGE)
        if shape is not None:
            what, check = shape
            problem = check(value)
            if problem is not None:
                raise self._fail(f"field '{name}' is not {what} ({problem})")
        return value

    def str_list(
        self, name: str, max_items: int, *, required: bool = True, max_len: int = MAX_ID
    ) -> Any:
        value = self._pop(name, required)
        if value is None:
            return None
        if not isinstance(value, list):
            raise self._fail(f"field '{name}' must be an array")
        if len(value) > max_items:
            raise self._fail(f"field '{name}' has more than {max_items} items", ErrorCode.TOO_LARGE)
        for item in value:
            if not isinstance(item, str) or not 0 < len(item) <= max_len:
                raise self._fail(f"field '{name}' must hold non-empty strings of at most {max_len}")
            if self._plain_text and unfit_text(item):
                raise self._fail(f"field '{name}' must not contain control characters")
        return tuple(value)

    def bytes_list(self, name: str, max_items: int, max_len: int, *, required: bool = True) -> Any:
        value = self._pop(name, required)
        if value is None:
            return None
        if not isinstance(value, list) or len(value) > max_items:
            raise self._fail(f"field '{name}' must be an array of at most {max_items} items")
        for item in value:
            if not isinstance(item, bytes) or len(item) > max_len:
                raise self._fail(f"field '{name}' must hold binaries of at most {max_len} bytes")
        return tuple(value)

    def int_list(self, name: str, max_items: int) -> Any:
        value = self._pop(name, True)
        if not isinstance(value, list) or not 0 < len(value) <= max_items:
            raise self._fail(f"field '{name}' must be an array of 1 to {max_items} integers")
        for item in value:
            if not isinstance(item, int) or isinstance(item, bool) or not 0 < item < 2**63:
                raise self._fail(f"field '{name}' must hold positive integers")
        return tuple(value)

    def map_list(self, name: str, *, required: bool = True) -> Any:
        value = self._pop(name, required)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self._fail(f"field '{name}' must be an array of maps")
        return value

    def map_(self, name: str, *, required: bool = True) -> Any:
        value = self._pop(name, required)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self._fail(f"field '{name}' must be a map")
        return value

    def done(self, *, strict: bool = True) -> None:
        if strict and self._data:
            names = ", ".join(sorted(str(k) for k in self._data))
            raise self._fail(f"unknown field(s): {names}")
