"""Passwords (Argon2id via ``nacl.pwhash``) and session tokens (random, hashed at rest)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets

import nacl.exceptions
import nacl.pwhash

__all__ = ["check_password", "hash_password", "hash_token", "new_token", "tokens_match"]

_COSTS = {
    "interactive": (
        nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE,
        nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE,
    ),
    "moderate": (nacl.pwhash.argon2id.OPSLIMIT_MODERATE, nacl.pwhash.argon2id.MEMLIMIT_MODERATE),
    "min": (nacl.pwhash.argon2id.OPSLIMIT_MIN, nacl.pwhash.argon2id.MEMLIMIT_MIN),
}


async def hash_password(password: str, cost: str = "interactive") -> str:
    """Argon2id hash in libsodium's modular format; runs off the event loop."""
    ops, mem = _COSTS[cost]
    digest = await asyncio.to_thread(
        nacl.pwhash.argon2id.str, password.encode("utf-8"), opslimit=ops, memlimit=mem
    )
    return digest.decode("ascii")


async def check_password(password: str, stored: str) -> bool:
    def verify() -> bool:
        try:
            return bool(nacl.pwhash.verify(stored.encode("ascii"), password.encode("utf-8")))
        except nacl.exceptions.InvalidkeyError:
            return False

    return await asyncio.to_thread(verify)


def new_token() -> str:
    """A bearer token: 256 random bits, url-safe. Only its hash is stored."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def tokens_match(stored_hash: bytes, token: str) -> bool:
    """Constant-time comparison of a stored hash with a presented token."""
    return hmac.compare_digest(stored_hash, hash_token(token))
