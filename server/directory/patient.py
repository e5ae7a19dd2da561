"""The patient form of a referral or SAS booking, checked (pure).

Every problem is collected before answering, so one 400 names each missing or invalid
field (``patient.birth_name``, ``patient.phone``...), as the booking form shows them.
Phones become E.164 (French national numbers → ``+33``), dates must be real days in
the past 130 years, postcodes five digits of an existing département range.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from storage.directory import DEFAULT_REQUIRED_FIELDS, PATIENT_FIELDS

from ..fields import e164, email_address, valid_postcode

__all__ = [
    "CIVILITIES",
    "MAX_MESSAGE",
    "MAX_INSTRUCTIONS",
    "MESSAGE_NOTICE",
    "SAS_NOTICE",
    "PatientForm",
    "check_patient",
    "parse_birth_date",
]

CIVILITIES = ("madame", "monsieur")
MAX_MESSAGE = 2000
MAX_TEXT = 100
MAX_ADDRESS = 200
MESSAGE_NOTICE = (
    "Le contenu de cette note engage la responsabilité de son auteur. Pour toute "
    "information urgente, contactez le praticien par un moyen de communication approprié."
)
# The SAS guide's wording above a regulator's message to the practitioner.
SAS_NOTICE = (
    "Attention : ce message ne sera pas lu en temps réel et ne doit pas présenter de "
    "caractère d'urgence. Il peut aussi ne pas être lu par le praticien auquel vous adressez "
    "votre patient. Les informations renseignées ne doivent pas être excessives, "
    "inappropriées, subjectives, insultantes, discriminatoires ou contraires à la loi."
)
MAX_INSTRUCTIONS = 1000


@dataclass(frozen=True, slots=True)
class PatientForm:
    """The outcome: ``patient`` holds the checked fields that were given; ``missing``
    and ``invalid`` name the others (``invalid`` as ``(field, why)``)."""

    patient: dict[str, Any]
    missing: list[str]
    invalid: list[tuple[str, str]]

    @property
    def ok(self) -> bool:
        return not self.missing and not self.invalid

    def problem(self, prefix: str = "patient.") -> str:
        parts = []
        if self.missing:
            parts.append(
                "missing required field(s): " + ", ".join(prefix + f for f in self.missing)
            )
        if self.invalid:
            parts.append(
                "invalid field(s): " + "; ".join(f"{prefix}{f} {why}" for f, why in self.invalid)
            )
        return "; ".join(parts)


def parse_birth_date(raw: str, today: dt.date) -> dt.date | None:
    """``YYYY-MM-DD`` or ``DD/MM/YYYY``, a real day, not in the future, not more than
    130 years ago; ``None`` otherwise."""
    raw = raw.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
            day = dt.date.fromisoformat(raw)
        elif re.fullmatch(r"\d{2}/\d{2}/\d{4}", raw):
            d, m, y = raw.split("/")
            day = dt.date(int(y), int(m), int(d))
        else:
            return None
    except ValueError:
        return None
    if day > today or day.year < today.year - 130:
        return None
    return day


def check_patient(body: Any, required_extra: Sequence[str], today: dt.date) -> PatientForm:
    """Check the ``patient`` object of a booking against the default required fields
    plus the practitioner's ``required_extra``."""
    if not isinstance(body, dict):
        return PatientForm({}, [], [("", "must be an object")])
    required = set(DEFAULT_REQUIRED_FIELDS) | set(required_extra)
    patient: dict[str, Any] = {}
    missing: list[str] = []
    invalid: list[tuple[str, str]] = []
    unknown = sorted(set(body) - set(PATIENT_FIELDS))
    for name in unknown:
        invalid.append((str(name)[:40], "is not a patient field"))
    for name in PATIENT_FIELDS:
        value = body.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if name in required:
                missing.append(name)
            continue
        if name == "consulted_before":
            if not isinstance(value, bool):
                invalid.append((name, "must be true or false"))
            else:
                patient[name] = value
            continue
        if not isinstance(value, str):
            invalid.append((name, "must be a string"))
            continue
        value = value.strip()
        why = _check(name, value, today)
        if isinstance(why, tuple):
            invalid.append((name, why[0]))
        else:
            patient[name] = why
    return PatientForm(patient, missing, invalid)


def _check(name: str, value: str, today: dt.date) -> str | tuple[str]:
    """The normalised value, or ``(why,)`` when it is invalid."""
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return ("must not contain control characters",)
    if name == "civility":
        value = value.lower()
        return value if value in CIVILITIES else (f"must be one of {', '.join(CIVILITIES)}",)
    if name == "birth_date":
        day = parse_birth_date(value, today)
        if day is None:
            return ("must be a past date as YYYY-MM-DD or DD/MM/YYYY",)
        return day.isoformat()
    if name == "phone":
        number = e164(value)
        return number if number is not None else ("is not a valid phone number",)
    if name == "postcode":
        return value if valid_postcode(value) else ("is not a postcode of the official base",)
    if name == "email":
        address = email_address(value)
        return address if address is not None else ("is not a valid e-mail address",)
    limit = MAX_ADDRESS if name == "address" else MAX_TEXT
    if len(value) > limit:
        return (f"must have at most {limit} characters",)
    return value
