"""Reading a practitioner's identity from Pro Santé Connect claims, and comparing it
with the account (the guide: "Si vos noms, prénoms ou numéro RPPS stockés dans votre
carte CPS ne correspondent pas à ceux de votre compte", manual verification follows).

PSC gives the national identifier (idNat: ``8`` + RPPS or ``0`` + ADELI) in the
userinfo claim ``SubjectNameID`` (also ``preferred_username``), and the names in
``family_name`` / ``given_name`` (all given names, space separated).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from storage.types import User

from .identifiers import InvalidIdentifier, PractitionerId, parse_id_nat, parse_number
from .oidc import Identity, OidcError

__all__ = ["CardIdentity", "card_identity", "compare", "fold_name", "mismatches"]


@dataclass(frozen=True, slots=True)
class CardIdentity:
    practitioner: PractitionerId
    family_name: str
    given_names: tuple[str, ...]


def _claim(sources: tuple[Mapping[str, Any], ...], *names: str) -> str | None:
    for source in sources:
        for name in names:
            value = source.get(name)
            if isinstance(value, str) and value.strip():
                return value.strip()
    return None


def card_identity(identity: Identity) -> CardIdentity:
    sources = (identity.userinfo, identity.id_claims)
    id_nat = _claim(sources, "SubjectNameID", "preferred_username")
    family = _claim(sources, "family_name")
    given = _claim(sources, "given_name")
    if id_nat is None or family is None or given is None:
        raise OidcError("the provider gave no practitioner identifier or names")
    try:
        practitioner = parse_id_nat(id_nat)
    except InvalidIdentifier:
        raise OidcError("the practitioner identifier is not an RPPS or ADELI idNat") from None
    return CardIdentity(practitioner, family, tuple(given.replace(",", " ").split()))


def fold_name(name: str) -> str:
    """Names compare without case, accents, hyphens, apostrophes or extra spaces:
    "Lefèvre-Durand" == "LEFEVRE DURAND"."""
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join("".join(c if c.isalnum() else " " for c in plain).split())


def mismatches(user: User, card: CardIdentity) -> list[str]:
    """The account fields that differ from the card: "last_name", "first_name",
    "rpps". An account without a number takes the card's (see the route)."""
    return compare(user.first_name, user.last_name, user.rpps, card)


def compare(first_name: str, last_name: str, number: str | None, card: CardIdentity) -> list[str]:
    """The fields among these that differ from the card; the first name matches the
    first given name or all of them, a missing number matches any."""
    wrong = []
    if fold_name(last_name) != fold_name(card.family_name):
        wrong.append("last_name")
    first = fold_name(first_name)
    given = [fold_name(g) for g in card.given_names]
    if first not in (given[0] if given else "", " ".join(given)):
        wrong.append("first_name")
    if number is not None:
        try:
            own = parse_number(number)
        except InvalidIdentifier:
            own = None
        if own != card.practitioner:
            wrong.append("rpps")
    return wrong
