"""French practitioner identifiers: RPPS and ADELI numbers, and the national
identifier (idNat) Pro Santé Connect and the e-CPS app use.

- RPPS: 11 digits, the last one a Luhn check digit over the first ten (ASIP Santé,
  "Répertoire Partagé des Professionnels de Santé", numbering: the RPPS number is the
  10-digit root followed by its Luhn key).
- ADELI: 9 digits (département, profession, order number, key); its key scheme is not
  published for every profession, so only the shape is checked.
- idNat: the number with a one-digit prefix, ``8`` for an RPPS number and ``0`` for an
  ADELI number (the e-CPS log-in identifier, and the ``SubjectNameID`` claim of PSC).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "InvalidIdentifier",
    "PractitionerId",
    "luhn_valid",
    "parse_id_nat",
    "parse_number",
]

Kind = Literal["rpps", "adeli"]


class InvalidIdentifier(ValueError):
    """The text is not a valid RPPS/ADELI number or idNat; the message says why."""


@dataclass(frozen=True, slots=True)
class PractitionerId:
    kind: Kind
    number: str  # 11 digits (RPPS) or 9 digits (ADELI), no prefix

    @property
    def id_nat(self) -> str:
        """The e-CPS log-in identifier: ``8`` + RPPS or ``0`` + ADELI."""
        return ("8" if self.kind == "rpps" else "0") + self.number


def luhn_valid(digits: str) -> bool:
    """True if ``digits`` (ASCII digits only) ends with its Luhn check digit."""
    if not digits.isascii() or not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def parse_number(text: str) -> PractitionerId:
    """An RPPS (11 digits, valid Luhn key) or ADELI (9 digits) number; spaces allowed."""
    digits = text.replace(" ", "")
    if not digits.isascii() or not digits.isdigit():
        raise InvalidIdentifier("must contain digits only")
    if len(digits) == 11:
        if not luhn_valid(digits):
            raise InvalidIdentifier("is not a valid RPPS number (its check key is wrong)")
        return PractitionerId("rpps", digits)
    if len(digits) == 9:
        return PractitionerId("adeli", digits)
    raise InvalidIdentifier("must be an RPPS (11 digits) or ADELI (9 digits) number")


def parse_id_nat(text: str) -> PractitionerId:
    """The number inside an idNat: ``8`` + 11-digit RPPS, or ``0`` + 9-digit ADELI."""
    rpps = len(text) == 12 and text.startswith("8")
    adeli = len(text) == 10 and text.startswith("0")
    if not (rpps or adeli):
        raise InvalidIdentifier("is not an idNat (8 + RPPS or 0 + ADELI)")
    return parse_number(text[1:])
