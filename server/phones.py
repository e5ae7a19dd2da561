"""Phone numbers, validated and normalised to E.164 with phonenumbers (Google's
libphonenumber metadata): national French numbers (``06 45 37 26 53``, ``+33 (0)6…``,
``0033 6…``) become ``+33645372653``, overseas departments keep their own country
codes (``+262…``), and a number must be a real one of its country's plan (length and
ranges), not just digits."""

from __future__ import annotations

import phonenumbers

__all__ = ["MAX_RAW_LENGTH", "e164"]

MAX_RAW_LENGTH = 40  # longer input is not a phone number, whatever it holds


def e164(raw: str, region: str = "FR") -> str | None:
    """``raw`` in E.164, or ``None`` if it is not a valid number (national numbers are
    read as ``region``'s)."""
    if len(raw) > MAX_RAW_LENGTH:
        return None
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
