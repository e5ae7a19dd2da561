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
text, gives the default, as :func:`server.fields.optional_text` reads it). What needs
more than one field or the database (a password's strength against the account's
names, a code against the stored one) stays in the handler.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Annotated, Any, Protocol, TypeVar, get_args, get_origin, get_type_hints

from .errors import bad_field
from .fields import choice, email, postcode, text
from .openapi import Schema, boolean, nullable, obj, string

__all__ = [
    "Choice",
    "Email",
    "Flag",
    "Pattern",
    "Postcode",
    "Rule",
    "Text",
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
        return string(pattern=self.regex)

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
    """The body's JSON Schema (properties not declared are allowed and ignored; an
    optional one may be ``null``)."""
    fields = _fields(cls)
    return obj(
        {f.name: f.rule.schema() if f.required else nullable(f.rule.schema()) for f in fields},
        required=[f.name for f in fields if f.required],
    )


def parse_body(cls: type[B], body: dict[str, Any]) -> B:
    """``body`` (a JSON object) checked field by field into a ``cls``."""
    values: dict[str, Any] = {}
    for f in _fields(cls):
        value = body.get(f.name)
        absent = value is None or (value == "" and isinstance(f.rule, Text))
        if f.required or not absent:
            values[f.name] = f.rule.parse(body, f.name)
    return cls(**values)
