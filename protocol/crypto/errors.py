"""The exception tree of :mod:`protocol.crypto`.

::

    CryptoError              root: nothing was decrypted, stored or changed
    ├── BadKey               a key of the wrong type or size
    ├── BadVersion           an unknown version byte in a key bundle, ciphertext or share
    ├── Tampered             authentication failed: modified, truncated or wrong key
    │   └── Truncated        too short, or not the structure the version byte announces
    ├── BadSignature         an Ed25519 signature that does not verify, or by a key that
    │                        is not the claimed device's
    ├── Replayed             a message index that was already decrypted
    ├── UnknownSession       no sender key for this message (not shared with us yet, or
    │                        the message precedes the index we were given)
    └── TooFarAhead          a message index beyond the skip window of a sender key

Messages name the problem, never key material, so they are safe to log and to show.
"""

from __future__ import annotations

__all__ = [
    "BadKey",
    "BadSignature",
    "BadVersion",
    "CryptoError",
    "Replayed",
    "Tampered",
    "TooFarAhead",
    "Truncated",
    "UnknownSession",
]


class CryptoError(Exception):
    """Root of the exceptions raised by :mod:`protocol.crypto`."""


class BadKey(CryptoError):
    """A key of the wrong type or size."""


class BadVersion(CryptoError):
    """A version byte this implementation does not know."""


class Tampered(CryptoError):
    """Authentication failed: the bytes were modified, or the key is not the right one."""


class Truncated(Tampered):
    """Too short, or not the structure its version byte announces."""


class BadSignature(CryptoError):
    """A signature that does not verify with the claimed device's signing key."""


class Replayed(CryptoError):
    """This message index of this sender key was already decrypted."""


class UnknownSession(CryptoError):
    """No sender key to decrypt this message with."""


class TooFarAhead(CryptoError):
    """The message index is further ahead than the skip window allows."""
