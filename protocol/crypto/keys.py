"""Device identity keys and signed public key bundles.

A device owns an X25519 key (``nacl.public.Box``: to-device payloads) and an Ed25519
key (signatures: key bundles and room messages). Their public halves travel in a
*bundle*, signed by the Ed25519 key and published through ``keys.upload``::

    bundle = version (1 byte, 0x01) || signature (64) || payload
    payload = msgpack array [user id (str), device id (str), x25519 public (bin 32),
                             ed25519 public (bin 32)]
    signature = Ed25519(b"confrere/bundle" || version || payload)

A bundle proves that whoever holds the signing key vouches for the box key and for
the (user, device) pair; whether the signing key belongs to the person is what safety
numbers (:mod:`protocol.crypto.safety`) let two users check out of band.

Key file (:meth:`DeviceKeys.to_bytes`): version 0x01 || x25519 secret (32) ||
ed25519 seed (32). Keep it private (mode 0600).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgpack
import nacl.exceptions
import nacl.hash
import nacl.utils
from nacl.encoding import RawEncoder
from nacl.public import PrivateKey, PublicKey
from nacl.signing import SigningKey, VerifyKey

from .errors import BadKey, BadSignature, BadVersion, Truncated

__all__ = [
    "BUNDLE_VERSION",
    "KEY_FILE_VERSION",
    "MAX_BUNDLE",
    "DeviceKeys",
    "KeyBundle",
    "check_key",
    "parse_bundle",
]

BUNDLE_VERSION = 1
KEY_FILE_VERSION = 1
KEY_SIZE = 32
SIGNATURE_SIZE = 64
MAX_BUNDLE = 1024  # bytes: ids of at most 64 characters keep bundles far below
_BUNDLE_CONTEXT = b"confrere/bundle"


def check_key(value: object, what: str, size: int = KEY_SIZE) -> bytes:
    """Return ``value`` if it is ``size`` bytes, else raise :class:`BadKey`."""
    if not isinstance(value, bytes):
        raise BadKey(f"{what} must be bytes, not {type(value).__name__}")
    if len(value) != size:
        raise BadKey(f"{what} must be {size} bytes, got {len(value)}")
    return value


@dataclass(frozen=True, slots=True)
class KeyBundle:
    """A device's public keys, as published; build with :meth:`DeviceKeys.bundle`."""

    user_id: str
    device_id: str
    box_public: bytes
    sign_public: bytes
    signature: bytes

    def payload(self) -> bytes:
        packed: bytes = msgpack.packb(
            [self.user_id, self.device_id, self.box_public, self.sign_public],
            use_bin_type=True,
        )
        return packed

    def to_bytes(self) -> bytes:
        return bytes([BUNDLE_VERSION]) + self.signature + self.payload()


def _bundle_message(payload: bytes) -> bytes:
    return _BUNDLE_CONTEXT + bytes([BUNDLE_VERSION]) + payload


def parse_bundle(data: bytes) -> KeyBundle:
    """Parse and verify a bundle; raise a :class:`~protocol.crypto.errors.CryptoError`
    (``BadVersion``, ``Truncated``, ``BadKey``, ``BadSignature``) if it is not valid.

    The caller then checks that ``user_id``/``device_id`` are the ones it expected."""
    if not isinstance(data, bytes) or not data:
        raise Truncated("empty key bundle")
    if data[0] != BUNDLE_VERSION:
        raise BadVersion(f"unknown key bundle version {data[0]}")
    if len(data) > MAX_BUNDLE:
        raise Truncated(f"key bundle longer than {MAX_BUNDLE} bytes")
    if len(data) < 1 + SIGNATURE_SIZE + 1:
        raise Truncated("key bundle too short")
    signature = data[1 : 1 + SIGNATURE_SIZE]
    payload = data[1 + SIGNATURE_SIZE :]
    try:
        fields: Any = msgpack.unpackb(payload, raw=False, max_bin_len=64, max_str_len=256)
    except (ValueError, msgpack.UnpackException, TypeError) as exc:
        raise Truncated(f"key bundle payload is not valid msgpack ({type(exc).__name__})") from None
    if (
        not isinstance(fields, list)
        or len(fields) != 4
        or not all(isinstance(f, str) and f for f in fields[:2])
    ):
        raise Truncated("key bundle payload must be [user, device, box key, signing key]")
    user_id, device_id, box_public, sign_public = fields
    bundle = KeyBundle(
        user_id,
        device_id,
        check_key(box_public, "X25519 public key"),
        check_key(sign_public, "Ed25519 public key"),
        signature,
    )
    verify(sign_public, _bundle_message(payload), signature, "key bundle")
    return bundle


def verify(sign_public: bytes, message: bytes, signature: bytes, what: str) -> None:
    """Raise :class:`BadSignature` unless ``signature`` is ``sign_public``'s over ``message``."""
    check_key(sign_public, "Ed25519 public key")
    try:
        VerifyKey(sign_public).verify(message, signature)
    except nacl.exceptions.BadSignatureError:
        raise BadSignature(f"{what}: signature does not verify") from None
    except (nacl.exceptions.CryptoError, ValueError, TypeError):
        raise BadSignature(f"{what}: malformed signature") from None


def _derive(seed: bytes, label: bytes) -> bytes:
    out: bytes = nacl.hash.blake2b(
        label, digest_size=KEY_SIZE, key=seed, person=b"confrere-seed", encoder=RawEncoder
    )
    return out


class DeviceKeys:
    """A device's private keys. Construct with :meth:`generate`, :meth:`from_seed` (tests,
    vectors) or :meth:`from_bytes` (the key file)."""

    __slots__ = ("box", "signing")

    def __init__(self, box_secret: bytes, sign_seed: bytes) -> None:
        self.box = PrivateKey(check_key(box_secret, "X25519 secret key"))
        self.signing = SigningKey(check_key(sign_seed, "Ed25519 seed"))

    @classmethod
    def generate(cls) -> DeviceKeys:
        return cls(nacl.utils.random(KEY_SIZE), nacl.utils.random(KEY_SIZE))

    @classmethod
    def from_seed(cls, seed: bytes) -> DeviceKeys:
        """Deterministic keys from a 32-byte seed (BLAKE2b, keyed by the seed)."""
        check_key(seed, "seed")
        return cls(_derive(seed, b"x25519"), _derive(seed, b"ed25519"))

    @classmethod
    def from_bytes(cls, data: bytes) -> DeviceKeys:
        if not isinstance(data, bytes) or not data:
            raise Truncated("empty key file")
        if data[0] != KEY_FILE_VERSION:
            raise BadVersion(f"unknown key file version {data[0]}")
        if len(data) != 1 + 2 * KEY_SIZE:
            raise Truncated(f"key file must be {1 + 2 * KEY_SIZE} bytes")
        return cls(data[1:33], data[33:65])

    def to_bytes(self) -> bytes:
        return bytes([KEY_FILE_VERSION]) + bytes(self.box) + bytes(self.signing)

    @property
    def box_public(self) -> bytes:
        return bytes(self.box.public_key)

    @property
    def sign_public(self) -> bytes:
        return bytes(self.signing.verify_key)

    def public_key(self) -> PublicKey:
        return self.box.public_key

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``message`` (deterministic)."""
        signature: bytes = self.signing.sign(message).signature
        return signature

    def bundle(self, user_id: str, device_id: str) -> KeyBundle:
        """This device's signed public bundle for ``user_id``/``device_id``."""
        unsigned = KeyBundle(user_id, device_id, self.box_public, self.sign_public, b"")
        signature = self.sign(_bundle_message(unsigned.payload()))
        return KeyBundle(user_id, device_id, self.box_public, self.sign_public, signature)
