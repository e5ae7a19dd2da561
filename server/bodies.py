"""One declaration per REST request body, from which come both the request's validation
and its JSON Schema in ``/openapi.json``.

A body is a frozen dataclass whose fields are annotated with their rule::

    @dataclass(frozen=True, slots=True)
    class ResetBody:
        email: Annotated[str, Email()]
        code: Annotated[str, Pattern(r"^\\d{6}$", "must be the 6 digits sent by e-mail")]

    body = await read_body(request, ResetBody)  # the handler (routes/common.py): typed
    api_route(..., body=schema_of(ResetBody))  # the document

Each rule checks with :mod:`server.fields` (the field rules, defined once), so a refusal
is the 400 naming the field that the handlers always gave. Fields are checked in the
order declared; a field with a default is optional (absent or ``null``, or ``""`` for a
text that needs a character, gives the default, as :func:`server.fields.optional_text`
reads it). What needs
more than one field or the database (a password's strength against the account's
names, a code against the stored one) stays in the handler.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import math
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Annotated, Any, Protocol, TypeVar, get_args, get_origin, get_type_hints

from .errors import ApiError, bad_field, bad_request
from .fields import choice, email, postcode, text
from .openapi import Schema, array, boolean, integer, nullable, obj, string

__all__ = [
    "Base64",
    "Choice",
    "Deferred",
    "Email",
    "EmailBody",
    "Flag",
    "Integer",
    "Items",
    "Number",
    "Pattern",
    "Postcode",
    "Rule",
    "Strings",
    "Text",
    "base64_field",
    "parse_body",
    "schema_of",
]

B = TypeVar("B")


class Rule(Protocol):
    def schema(self) -> Schema: ...

    def parse(self, body: dict[str, Any], name: str) -> Any:
        """The field's value, or raise :func:`~server.errors.bad_field`."""


@dataclass(frozen=True, slots=True)
class Text:
    """A string (:func:`server.fields.text`: the text rule, then the length)."""

    max_len: int = 100
    min_len: int = 1
    strip: bool = True
    multiline: bool = False

    def schema(self) -> Schema:
        return string(max_length=self.max_len)

    def parse(self, body: dict[str, Any], name: str) -> str:
        return text(
            body, name, self.max_len, self.min_len, strip=self.strip, multiline=self.multiline
        )


@dataclass(frozen=True, slots=True)
class Email:
    """An e-mail address, normalised (:func:`server.fields.email`)."""

    def schema(self) -> Schema:
        return string(max_length=254)

    def parse(self, body: dict[str, Any], name: str) -> str:
        return email(body, name)


@dataclass(frozen=True, slots=True)
class Choice:
    values: Collection[str]

    def schema(self) -> Schema:
        return string(enum=self.values)

    def parse(self, body: dict[str, Any], name: str) -> str:
        return choice(body, name, self.values)


@dataclass(frozen=True, slots=True)
class Pattern:
    """A string matching ``regex`` whole; ``why`` (and ``reason``) say what it must be."""

    regex: str
    why: str
    reason: str | None = None

    def schema(self) -> Schema:
        # JSON Schema patterns match anywhere: anchor them as the check does.
        anchored = self.regex if self.regex.startswith("^") else f"^{self.regex}$"
        return string(pattern=anchored)

    def parse(self, body: dict[str, Any], name: str) -> str:
        value = body.get(name)
        if not isinstance(value, str) or not re.fullmatch(self.regex, value):
            raise bad_field(name, self.why, self.reason)
        return value


@dataclass(frozen=True, slots=True)
class Postcode:
    """A postcode of the official base (:func:`server.fields.postcode`)."""

    def schema(self) -> Schema:
        return string(pattern=r"^\d{5}$")

    def parse(self, body: dict[str, Any], name: str) -> str:
        return postcode(body, name)


@dataclass(frozen=True, slots=True)
class Flag:
    """A JSON boolean (``"true"`` or ``1`` is refused)."""

    why: str = "is required and must be a boolean"

    def schema(self) -> Schema:
        return boolean()

    def parse(self, body: dict[str, Any], name: str) -> bool:
        value = body.get(name)
        if not isinstance(value, bool):
            raise bad_field(name, self.why)
        return value


@dataclass(frozen=True, slots=True)
class Integer:
    """A JSON integer (not a boolean, not a float) from ``low`` to ``high``; ``why`` is
    the refusal's message (by default, the range)."""

    low: int
    high: int
    why: str | None = None

    def schema(self) -> Schema:
        return integer(minimum=self.low, maximum=self.high)

    def parse(self, body: dict[str, Any], name: str) -> int:
        value = body.get(name)
        if (
            isinstance(value, int)
            and not isinstance(value, bool)
            and self.low <= value <= self.high
        ):
            return value
        raise bad_field(name, self.why or f"must be an integer from {self.low} to {self.high}")


@dataclass(frozen=True, slots=True)
class Number:
    """A finite JSON number (not a boolean) from ``low`` to ``high``."""

    low: float
    high: float

    def schema(self) -> Schema:
        return {"type": "number", "minimum": self.low, "maximum": self.high}

    def parse(self, body: dict[str, Any], name: str) -> float:
        value = body.get(name)
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise bad_field(name, "must be a number")
        if not math.isfinite(value) or not self.low <= value <= self.high:
            raise bad_field(name, f"must be between {self.low:g} and {self.high:g}")
        return float(value)


@dataclass(frozen=True, slots=True)
class Strings:
    """A list of ``min_items`` to ``max_items`` strings, each matching ``regex`` whole
    or, with ``values``, one of them; repeats dropped (first kept)."""

    why: str
    max_items: int
    min_items: int = 0
    regex: str = ".*"
    values: Collection[str] = ()

    def schema(self) -> Schema:
        item = string(enum=self.values) if self.values else string(pattern=f"^{self.regex}$")
        schema = array(item, max_items=self.max_items)
        if self.min_items:
            schema["minItems"] = self.min_items
        return schema

    def parse(self, body: dict[str, Any], name: str) -> tuple[str, ...]:
        value = body.get(name)
        if (
            not isinstance(value, list)
            or not self.min_items <= len(value) <= self.max_items
            or not all(isinstance(v, str) for v in value)
            or not all(
                v in self.values if self.values else re.fullmatch(self.regex, v) for v in value
            )
        ):
            raise bad_field(name, self.why)
        return tuple(dict.fromkeys(value))


@dataclass(frozen=True, slots=True)
class Items:
    """A list of ``min_items`` to ``max_items`` objects, each a ``body`` declaration; a
    refusal's message names the item's field as ``name[i].field``, its ``field`` is
    ``name`` (SPEC.md §8.1: a field inside a list is named by the list)."""

    body: type[Any]
    why: str
    max_items: int
    min_items: int = 1

    def schema(self) -> Schema:
        schema = array(schema_of(self.body), max_items=self.max_items)
        schema["minItems"] = self.min_items
        return schema

    def parse(self, body: dict[str, Any], name: str) -> tuple[Any, ...]:
        value = body.get(name)
        if not isinstance(value, list) or not self.min_items <= len(value) <= self.max_items:
            raise bad_field(name, self.why)
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise bad_field(f"{name}[{i}]", "must be an object")
            try:
                out.append(parse_body(self.body, item, f"{name}[{i}]."))
            except ApiError as exc:  # the message says where; the field is the list's
                raise ApiError(exc.code, exc.message, field=name, reason=exc.reason) from None
        return tuple(out)


@dataclass(frozen=True, slots=True)
class Deferred:
    """Any JSON value, documented by ``described``, checked by the handler because the
    check needs what only the handler knows (a booking's patient form: the
    practitioner's required fields)."""

    described: Schema

    def schema(self) -> Schema:
        return self.described

    def parse(self, body: dict[str, Any], name: str) -> Any:
        return body.get(name)


@dataclass(frozen=True, slots=True)
class EmailBody:
    """A body that is one e-mail address (a password reset's, a regulator link's)."""

    email: Annotated[str, Email()]


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    rule: Rule
    required: bool


_FIELDS: dict[type[Any], tuple[_Field, ...]] = {}


def _fields(cls: type[Any]) -> tuple[_Field, ...]:
    """The declared fields of a body class, read once."""
    found = _FIELDS.get(cls)
    if found is None:
        hints = get_type_hints(cls, include_extras=True)
        out = []
        for f in dataclasses.fields(cls):
            hint = hints[f.name]
            rules = [a for a in get_args(hint)[1:] if hasattr(a, "parse")]
            if get_origin(hint) is not Annotated or len(rules) != 1:
                raise TypeError(f"{cls.__name__}.{f.name}: annotate it with one rule")
            required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            out.append(_Field(f.name, rules[0], required))
        found = _FIELDS[cls] = tuple(out)
    return found


def schema_of(cls: type[Any]) -> Schema:
    """The body's JSON Schema (an optional property may be ``null``; properties not
    declared are allowed and ignored, unless the class says ``closed = True``)."""
    fields = _fields(cls)
    return obj(
        {f.name: f.rule.schema() if f.required else nullable(f.rule.schema()) for f in fields},
        required=[f.name for f in fields if f.required],
        extra=not getattr(cls, "closed", False),
    )


def parse_body(cls: type[B], body: dict[str, Any], prefix: str = "") -> B:
    """``body`` (a JSON object) checked field by field into a ``cls``; ``prefix`` names
    where it is in a larger body (``slots[2].``)."""
    fields = _fields(cls)
    if getattr(cls, "closed", False):
        unknown = sorted(set(body) - {f.name for f in fields})
        if unknown:
            raise bad_request(f"unknown field(s): {', '.join(str(u)[:40] for u in unknown)}")
    values: dict[str, Any] = {}
    for f in fields:
        value = body.get(f.name)
        # "" is no text, unless the rule takes an empty one (then it is a value).
        blank = value == "" and isinstance(f.rule, Text) and f.rule.min_len > 0
        if f.required or not (value is None or blank):
            label = prefix + f.name
            values[f.name] = f.rule.parse({label: value} if prefix else body, label)
    return cls(**values)


@dataclass(frozen=True, slots=True)
class Base64:
    """Bytes in standard base64 (padded), ``min_size`` to ``max_size`` of them."""

    min_size: int
    max_size: int

    def schema(self) -> Schema:
        return string(max_length=4 * ((self.max_size + 2) // 3))

    def parse(self, body: dict[str, Any], name: str) -> bytes:
        return base64_field(body.get(name), name, self.min_size, self.max_size)


def base64_field(value: object, name: str, min_size: int, max_size: int) -> bytes:
    """``value`` decoded from base64, or the 400 naming ``name``."""
    if not isinstance(value, str) or len(value) > 4 * ((max_size + 2) // 3):
        raise bad_field(name, f"must be base64 of {min_size} to {max_size} bytes")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise bad_field(name, "must be base64") from None
    if not min_size <= len(raw) <= max_size:
        raise bad_field(name, f"must be base64 of {min_size} to {max_size} bytes")
    return raw
