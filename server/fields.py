"""The field rules, defined once: e-mail addresses, French postcodes and phone numbers
(pure predicates and normalisers), and the checks of REST body fields built on them,
each failure a 400 naming the field."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection
from typing import Any

import phonenumbers

from protocol.fields import unfit_text
from storage.guests import normalise_email

from .errors import bad_field
from .postcodes import Commune, is_postcode, locate

__all__ = [
    "choice",
    "e164",
    "email",
    "email_address",
    "optional_text",
    "place",
    "postcode",
    "text",
    "valid_postcode",
]

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
MAX_PHONE_LENGTH = 40  # longer input is not a phone number, whatever it holds


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
        raise bad_field(field, "is required and must be a string")
    if unfit_text(value, multiline=multiline):
        raise bad_field(field, "must not contain control characters")
    if strip:
        value = value.strip()
    if len(value) < min_len:
        raise bad_field(field, f"must have at least {min_len} character(s)")
    if len(value) > max_len:
        raise bad_field(field, f"must have at most {max_len} characters")
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
        raise bad_field(field, f"must be one of {', '.join(choices)}")
    return value


def email(body: dict[str, Any], field: str = "email") -> str:
    """Normalised as every stored address is (:func:`storage.guests.normalise_email`:
    trimmed, NFC, lower-cased), so addresses match however they were typed; an address
    with control or invisible characters (zero-width spaces...) is refused: it would
    look like another one."""
    raw = text(body, field, 254)
    if any(unicodedata.category(ch)[0] == "C" for ch in raw):
        raise bad_field(field, "must not contain control or invisible characters")
    value = email_address(raw)
    if value is None:
        raise bad_field(field, "is not a valid e-mail address")
    return value


def email_address(raw: str) -> str | None:
    """``raw`` normalised as every stored address is (trimmed, NFC, lower-cased), or
    ``None`` if that is not an e-mail address of at most 254 characters."""
    value = normalise_email(raw)
    return value if len(value) <= 254 and _EMAIL.match(value) else None


def e164(raw: str, region: str = "FR") -> str | None:
    """A phone number in E.164, or ``None`` if it is not a valid one, by phonenumbers
    (Google's libphonenumber metadata): French national numbers (``06 45 37 26 53``,
    ``+33 (0)6…``, ``0033 6…``) become ``+33645372653``, overseas departments keep
    their own country codes (``+262…``), and a number must be a real one of its
    country's plan (length and ranges), not just digits. National numbers are read as
    ``region``'s."""
    if len(raw) > MAX_PHONE_LENGTH:
        return None
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def valid_postcode(raw: str) -> bool:
    """A postcode of the official base (:mod:`server.postcodes`): five
    digits La Poste serves, arrondissements included (75011, 69003, 13001); no CEDEX."""
    return is_postcode(raw)


def postcode(body: dict[str, Any], field: str = "postcode") -> str:
    value = text(body, field, 5)
    if not valid_postcode(value):
        raise bad_field(field, "is not a postcode of the official base", "postcode_unknown")
    return value


def place(raw: str, field: str = "near") -> Commune:
    """Where a "near" field (a postcode or a commune's name) is."""
    found = locate(raw)
    if found is None:
        raise bad_field(field, f"is not a known postcode or commune: {raw[:40]!r}", "place_unknown")
    return found
