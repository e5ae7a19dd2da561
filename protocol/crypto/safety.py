"""Safety numbers: 60 digits two users compare (aloud, or by QR code) to check that the
identity keys each client holds for the other are the right ones.

Per user: their Ed25519 *identity key* (cross-signing, :mod:`protocol.crypto.identity`),
hashed with their user id; a user who has published no identity key yet (a client of
before cross-signing) counts with the sorted Ed25519 keys of their devices instead::

    digest = BLAKE2b-512(person="confrere-safety", data=0x01 || len16(user id) || user id
                         || key_1 || ... || key_n), iterated 1024 times (data: digest || keys)
    half   = 6 groups of 5 digits: group k = int.from_bytes(digest[5k:5k+5]) mod 100000

The number is the two halves in ascending order, so both users see the same 60 digits.
Over identity keys it does not change when either user adds or removes a device (the
new device is signed by the same identity key); it changes when an identity key is
replaced (a user who lost every device and their recovery phrase, or an attack).
"""

from __future__ import annotations

from collections.abc import Iterable

import nacl.hash
from nacl.encoding import RawEncoder

from .keys import check_key

__all__ = ["SAFETY_VERSION", "format_safety_number", "safety_number"]

SAFETY_VERSION = 1
_ITERATIONS = 1024
_PERSON = b"confrere-safety"


def _half(user_id: str, keys: Iterable[bytes]) -> str:
    material = b"".join(sorted(check_key(k, "Ed25519 public key") for k in keys))
    if not material:
        raise ValueError("a safety number needs at least one key per user")
    raw = user_id.encode("utf-8")
    digest = bytes([SAFETY_VERSION]) + len(raw).to_bytes(2, "big") + raw + material
    for _ in range(_ITERATIONS):
        digest = nacl.hash.blake2b(
            digest + material, digest_size=64, person=_PERSON, encoder=RawEncoder
        )
    return "".join(
        f"{int.from_bytes(digest[5 * k : 5 * k + 5], 'big') % 100_000:05d}" for k in range(6)
    )


def safety_number(
    user_a: str, keys_a: Iterable[bytes], user_b: str, keys_b: Iterable[bytes]
) -> str:
    """The 60-digit safety number of two users (symmetric in the two)."""
    return "".join(sorted((_half(user_a, keys_a), _half(user_b, keys_b))))


def format_safety_number(number: str) -> str:
    """Twelve groups of five digits, as they are read out."""
    return " ".join(number[i : i + 5] for i in range(0, len(number), 5))
