"""Signing up with Pro Santé Connect ("CONTINUER AVEC MA CARTE CPS OU E-CPS —
Inscription rapide"): the card authenticates the practitioner before any account
exists, and pre-fills the sign-up form.

1. ``POST /v1/accounts/psc/start`` (no session) opens a flow whose ``state`` is
   ``"signup." + sealed({"x": expiry, "n": random})``: nothing is stored, the seal
   makes it unforgeable and the expiry bounds it. The browser-binding cookie is the
   same as for verification (``oidc.browser_binding``), and the provider's code is
   good once, so a callback URL cannot be replayed in another browser, or twice.
2. The callback (``/v1/verification/psc/callback``, the one redirect URI registered at
   the provider) recognises the prefix, checks the id_token as always, and answers
   with a *ticket*: the card's identity (idNat, names), sealed, expiring after
   :data:`TICKET_TTL_MS`, in the HttpOnly cookie :data:`TICKET_COOKIE` (path
   ``/v1/accounts``). The browser lands on ``/inscription#verification=signup``.
3. ``GET /v1/accounts/psc`` reads the ticket back for the form (names, number).
4. ``POST /v1/accounts`` with ``"pro_sante_connect": true`` and the cookie creates an
   account whose names must be the card's (compared without case or accents, so the
   practitioner may fix those) and whose number is the card's; it is verified at
   creation, and its address is still confirmed by the e-mail code like any other.
   The number then belongs to that account (another verified account with it is a
   409), and the response deletes the cookie.
"""

from __future__ import annotations

import secrets
from typing import Any

from .identifiers import InvalidIdentifier, parse_id_nat
from .psc import CardIdentity
from .sealed import BadToken, seal, unseal

__all__ = [
    "STATE_PREFIX",
    "TICKET_COOKIE",
    "TICKET_TTL_MS",
    "BadToken",
    "is_signup_state",
    "new_state",
    "prefill",
    "read_state",
    "read_ticket",
    "ticket",
]

STATE_PREFIX = "signup."
TICKET_COOKIE = "confrere_psc_signup"
TICKET_TTL_MS = 30 * 60 * 1000  # time to fill in the rest of the form
_STATE = b"confrere-psc-st"
_TICKET = b"confrere-psc-tk"


def is_signup_state(state: str) -> bool:
    return state.startswith(STATE_PREFIX)


def new_state(server_key: bytes, expires_at: int) -> str:
    return STATE_PREFIX + seal(
        server_key, _STATE, {"x": expires_at, "n": secrets.token_urlsafe(16)}
    )


def read_state(server_key: bytes, state: str, now: int) -> None:
    """Raise :class:`BadToken` unless this server made ``state`` and it is unexpired."""
    unseal(server_key, _STATE, state.removeprefix(STATE_PREFIX), now)


def ticket(server_key: bytes, card: CardIdentity, expires_at: int) -> str:
    return seal(
        server_key,
        _TICKET,
        {
            "x": expires_at,
            "i": card.practitioner.id_nat,
            "f": card.family_name,
            "g": list(card.given_names),
        },
    )


def read_ticket(server_key: bytes, token: str, now: int) -> tuple[CardIdentity, int]:
    """The card a ticket carries and the ticket's expiry; :class:`BadToken` otherwise."""
    claims = unseal(server_key, _TICKET, token, now)
    try:
        card = CardIdentity(
            parse_id_nat(str(claims["i"])),
            str(claims["f"]),
            tuple(str(g) for g in claims["g"]),
        )
    except (KeyError, TypeError, InvalidIdentifier):
        raise BadToken("damaged") from None
    return card, int(claims["x"])


def _nice(name: str) -> str:
    """Cards give names in capitals: "LEFEVRE-DURAND" -> "Lefevre-Durand" (the form
    lets the practitioner put the accents back)."""
    return name.title() if name.isupper() else name


def prefill(card: CardIdentity) -> dict[str, Any]:
    """What the sign-up form shows from the card: the first given name, the family
    name, the RPPS or ADELI number."""
    return {
        "first_name": _nice(card.given_names[0]) if card.given_names else "",
        "last_name": _nice(card.family_name),
        "rpps": card.practitioner.number,
    }
