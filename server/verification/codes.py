"""E-mail confirmation codes: six random digits, sent once, kept only as a keyed hash.

A code is bound to the address it was sent to (it is in the MAC), so a code cannot
confirm another address; the store keeps one code per account. The MAC key
is derived from the server key: six digits are only 10^6 possibilities, so a plain
hash of the code would be reversed by brute force in a moment.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = ["CODE_DIGITS", "CODE_TTL_MS", "MAX_ATTEMPTS", "code_hash", "codes_match", "new_code"]

CODE_DIGITS = 6
CODE_TTL_MS = 15 * 60 * 1000  # long enough to open a mailbox, short enough to guess
MAX_ATTEMPTS = 5  # wrong guesses before the code is void: 5 in 10^6


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def code_hash(server_key: bytes, email: str, code: str) -> bytes:
    key = hashlib.blake2b(key=server_key, digest_size=32, person=b"confrere-email").digest()
    message = f"{email}\n{code}".encode()
    return hmac.new(key, message, hashlib.sha256).digest()


def codes_match(stored: bytes, server_key: bytes, email: str, code: str) -> bool:
    """Constant-time comparison of the stored hash with the hash of ``code``."""
    return hmac.compare_digest(stored, code_hash(server_key, email, code))
