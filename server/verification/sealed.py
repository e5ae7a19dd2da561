"""Signed, expiring tokens: claims the server hands out and reads back without a
database row (regulator sign-up links, Pro Santé Connect sign-up states and tickets).

A token is ``<payload>.<mac>``, both base64url: the payload is compact JSON whose
``"x"`` is the expiry (ms), the MAC an HMAC-SHA256 under a key derived from the server
key and the token's purpose, so a token of one purpose is never accepted for another.
Tokens are signed, not encrypted: put nothing in them that its holder may not read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

__all__ = ["BadToken", "seal", "unseal"]


class BadToken(ValueError):
    """``why`` is "damaged", "invalid" (forged, or of another purpose) or "expired"."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def _key(server_key: bytes, purpose: bytes) -> bytes:
    return hashlib.blake2b(key=server_key, digest_size=32, person=purpose).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def seal(server_key: bytes, purpose: bytes, claims: dict[str, Any]) -> str:
    """``purpose``: at most 16 bytes (a BLAKE2b personalisation); ``claims["x"]``: the
    expiry in ms."""
    payload = json.dumps(claims, separators=(",", ":"), ensure_ascii=False).encode()
    mac = hmac.new(_key(server_key, purpose), payload, hashlib.sha256).digest()
    return f"{_b64(payload)}.{_b64(mac)}"


def unseal(server_key: bytes, purpose: bytes, token: str, now: int) -> dict[str, Any]:
    """The claims of a token this server sealed for ``purpose``, unexpired at ``now``."""
    encoded, dot, mac_text = token.partition(".")
    try:
        payload, mac = _unb64(encoded), _unb64(mac_text)
    except (binascii.Error, ValueError):
        raise BadToken("damaged") from None
    expected = hmac.new(_key(server_key, purpose), payload, hashlib.sha256).digest()
    if not dot or not hmac.compare_digest(mac, expected):
        raise BadToken("invalid")
    try:
        claims = json.loads(payload)
        expires_at = int(claims["x"])
    except (ValueError, KeyError, TypeError):
        raise BadToken("damaged") from None
    if not isinstance(claims, dict):
        raise BadToken("damaged")
    if expires_at <= now:
        raise BadToken("expired")
    return claims
