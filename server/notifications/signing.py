"""Webhook signatures, sans-I/O: what the sender puts in ``Confrere-Signature`` and how a
receiver checks it.

The header is ``t=<unix seconds>,v1=<hex HMAC-SHA256>``, the HMAC keyed with the shared
secret over ``"<t>." + body`` (the raw bytes of the request body). Signing the
timestamp with the body lets a receiver refuse a replayed request: check that ``t`` is
within a few minutes of its clock (``tolerance_s``), then compare the HMAC in constant
time. Several ``v1=`` entries may appear while a secret is being rotated; one matching
is enough.
"""

from __future__ import annotations

import hashlib
import hmac
import re

__all__ = ["SIGNATURE_HEADER", "sign", "signature", "verify"]

SIGNATURE_HEADER = "Confrere-Signature"
DEFAULT_TOLERANCE_S = 300
# ASCII only: str.isdigit() also takes superscripts, which int() rejects.
_TIMESTAMP = re.compile(r"[0-9]{1,12}", re.ASCII)
_HEX_MAC = re.compile(r"[0-9a-f]{64}", re.ASCII)


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``"<timestamp>." + body`` under ``secret``."""
    return hmac.new(
        secret, str(timestamp).encode("ascii") + b"." + body, hashlib.sha256
    ).hexdigest()


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The ``Confrere-Signature`` header value for ``body`` sent at ``timestamp`` (s)."""
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"


def verify(
    secret: bytes, header: str, body: bytes, now_s: int, tolerance_s: int = DEFAULT_TOLERANCE_S
) -> bool:
    """Whether ``header`` signs ``body`` under ``secret`` with a timestamp within
    ``tolerance_s`` of ``now_s``. Never raises on a malformed header: it is just false."""
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and _TIMESTAMP.fullmatch(value):
            timestamp = int(value)
        elif key == "v1" and _HEX_MAC.fullmatch(value):  # compare_digest wants ASCII
            candidates.append(value)
    if timestamp is None or abs(now_s - timestamp) > tolerance_s:
        return False
    expected = signature(secret, timestamp, body)
    # No early exit: every candidate is compared, each in constant time.
    matches = [hmac.compare_digest(expected, c) for c in candidates]
    return any(matches)
