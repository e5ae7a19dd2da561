"""One-time regulator sign-up links (SAS): signed, expiring, bound to one e-mail.

A link is a sealed token (:mod:`.sealed`) of the claims ``{"e": email, "x":
expires_at_ms, "j": link id}``. The signature makes links unforgeable without a
database read; the store records each link id so that a link creates one account only.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from .sealed import BadToken, seal, unseal

__all__ = ["LINK_TTL_MS", "BadLink", "LinkClaims", "read_link", "sign_link"]

LINK_TTL_MS = 7 * 24 * 3600 * 1000
_PURPOSE = b"confrere-reglink"
_WHY = {
    "damaged": "the sign-up link is damaged",
    "invalid": "the sign-up link is not valid",
    "expired": "the sign-up link has expired",
}


class BadLink(ValueError):
    """Forged, damaged or expired; the message says which, without the link;
    ``reason``: link_invalid or link_expired (SPEC.md §8.1)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class LinkClaims:
    email: str
    expires_at: int
    link_id: str


def sign_link(server_key: bytes, email: str, expires_at: int) -> tuple[str, LinkClaims]:
    claims = LinkClaims(email, expires_at, secrets.token_urlsafe(16))
    token = seal(server_key, _PURPOSE, {"e": email, "x": expires_at, "j": claims.link_id})
    return token, claims


def read_link(server_key: bytes, token: str, now: int) -> LinkClaims:
    try:
        data = unseal(server_key, _PURPOSE, token, now)
        return LinkClaims(str(data["e"]), int(data["x"]), str(data["j"]))
    except BadToken as exc:
        reason = "link_expired" if exc.why == "expired" else "link_invalid"
        raise BadLink(_WHY[exc.why], reason) from None
    except (KeyError, TypeError, ValueError):
        raise BadLink(_WHY["damaged"], "link_invalid") from None
