"""One-time regulator sign-up links (SAS): signed, expiring, bound to one e-mail.

A link carries ``<payload>.<mac>``, both base64url: the payload is the JSON
``{"e": email, "x": expires_at_ms, "j": link id}``, the MAC an HMAC-SHA256 under a key
derived from the server key. The signature makes links unforgeable without a database
read; the store records each link id so that a link creates one account only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

__all__ = ["LINK_TTL_MS", "BadLink", "LinkClaims", "read_link", "sign_link"]

LINK_TTL_MS = 7 * 24 * 3600 * 1000


class BadLink(ValueError):
    """Forged, damaged or expired; the message says which, without the link."""


@dataclass(frozen=True, slots=True)
class LinkClaims:
    email: str
    expires_at: int
    link_id: str


def _key(server_key: bytes) -> bytes:
    return hashlib.blake2b(key=server_key, digest_size=32, person=b"confrere-reglink").digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_link(server_key: bytes, email: str, expires_at: int) -> tuple[str, LinkClaims]:
    claims = LinkClaims(email, expires_at, secrets.token_urlsafe(16))
    payload = json.dumps(
        {"e": claims.email, "x": claims.expires_at, "j": claims.link_id}, separators=(",", ":")
    ).encode()
    mac = hmac.new(_key(server_key), payload, hashlib.sha256).digest()
    return f"{_b64(payload)}.{_b64(mac)}", claims


def read_link(server_key: bytes, token: str, now: int) -> LinkClaims:
    encoded, dot, mac_text = token.partition(".")
    try:
        payload, mac = _unb64(encoded), _unb64(mac_text)
    except (binascii.Error, ValueError):
        raise BadLink("the sign-up link is damaged") from None
    expected = hmac.new(_key(server_key), payload, hashlib.sha256).digest()
    if not dot or not hmac.compare_digest(mac, expected):
        raise BadLink("the sign-up link is not valid")
    try:
        data = json.loads(payload)
        claims = LinkClaims(str(data["e"]), int(data["x"]), str(data["j"]))
    except (ValueError, KeyError, TypeError):
        raise BadLink("the sign-up link is damaged") from None
    if claims.expires_at <= now:
        raise BadLink("the sign-up link has expired")
    return claims
