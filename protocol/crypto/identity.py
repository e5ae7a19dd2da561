"""Cross-signing: a user's identity key signs the bundles of that user's own devices.

Every user has one Ed25519 *identity key*. Its secret is held only by the user's
devices that have it (the SDK's identity file, the browser's IndexedDB): the first
device of a user creates it; a later device gets its bundle signed by a device that
holds it (the approval of a new device, which calls :func:`sign_device`). A device
whose bundle carries no valid signature of its user's identity key is *unverified*,
to everyone (SPEC.md §11.1).

Identity record (published with ``keys.upload``, returned by ``keys.query``)::

    record    = version (0x01) || signature (64) || payload
    payload   = msgpack array [user id (str), identity Ed25519 public (bin 32)]
    signature = Ed25519_identity(b"confrere/identity" || 0x01 || payload)

The self-signature binds the key to the user id (a record copied to another user
does not verify) and proves the uploader holds the secret.

Device signature (``keys.upload``'s ``signature``, ``keys.sign``, ``keys.query``)::

    device signature = version (0x01) || signature (64) || msgpack [user id, device id]
    signature        = Ed25519_identity(b"confrere/device" || 0x01 || identity public (32)
                                        || bundle payload)

where ``bundle payload`` is the signed payload of the device's bundle
(:mod:`protocol.crypto.keys`: user id, device id, X25519 and Ed25519 public keys), so
the signature vouches for exactly those keys: a device that uploads a new bundle is
unverified again until signed again.

Identity file (:meth:`IdentityKeys.to_bytes`): version 0x01 || Ed25519 seed (32).
Keep it private, like the device key file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgpack
import nacl.hash
import nacl.utils
from nacl.encoding import RawEncoder
from nacl.signing import SigningKey

from .errors import BadSignature, BadVersion, Truncated
from .keys import KEY_SIZE, SIGNATURE_SIZE, KeyBundle, check_key, verify

__all__ = [
    "DEVICE_SIGNATURE_VERSION",
    "IDENTITY_FILE_VERSION",
    "IDENTITY_VERSION",
    "MAX_DEVICE_SIGNATURE",
    "MAX_IDENTITY",
    "DeviceSignature",
    "IdentityKeys",
    "IdentityRecord",
    "device_verified",
    "parse_device_signature",
    "parse_identity",
    "sign_device",
    "verify_device",
]

IDENTITY_VERSION = 1
DEVICE_SIGNATURE_VERSION = 1
IDENTITY_FILE_VERSION = 1
MAX_IDENTITY = 512  # bytes: a user id of at most 64 characters keeps records far below
MAX_DEVICE_SIGNATURE = 512
_IDENTITY_CONTEXT = b"confrere/identity"
_DEVICE_CONTEXT = b"confrere/device"


def _pack(fields: list[Any]) -> bytes:
    packed: bytes = msgpack.packb(fields, use_bin_type=True)
    return packed


def _unpack(payload: bytes, what: str) -> Any:
    try:
        return msgpack.unpackb(payload, raw=False, max_bin_len=64, max_str_len=256)
    except (ValueError, msgpack.UnpackException, TypeError) as exc:
        raise Truncated(f"{what} payload is not valid msgpack ({type(exc).__name__})") from None


def _split(data: object, version: int, limit: int, what: str) -> tuple[bytes, bytes]:
    """``(signature, payload)`` of a ``version || signature || payload`` blob."""
    if not isinstance(data, bytes) or not data:
        raise Truncated(f"empty {what}")
    if data[0] != version:
        raise BadVersion(f"unknown {what} version {data[0]}")
    if len(data) > limit:
        raise Truncated(f"{what} longer than {limit} bytes")
    if len(data) < 1 + SIGNATURE_SIZE + 1:
        raise Truncated(f"{what} too short")
    return data[1 : 1 + SIGNATURE_SIZE], data[1 + SIGNATURE_SIZE :]


@dataclass(frozen=True, slots=True)
class IdentityRecord:
    """A user's published identity key; build with :meth:`IdentityKeys.record`."""

    user_id: str
    public: bytes
    signature: bytes

    def payload(self) -> bytes:
        return _pack([self.user_id, self.public])

    def to_bytes(self) -> bytes:
        return bytes([IDENTITY_VERSION]) + self.signature + self.payload()


@dataclass(frozen=True, slots=True)
class DeviceSignature:
    """An identity key's signature of one device's bundle; see :func:`sign_device`."""

    user_id: str
    device_id: str
    signature: bytes

    def to_bytes(self) -> bytes:
        return (
            bytes([DEVICE_SIGNATURE_VERSION])
            + self.signature
            + _pack([self.user_id, self.device_id])
        )


def _identity_message(payload: bytes) -> bytes:
    return _IDENTITY_CONTEXT + bytes([IDENTITY_VERSION]) + payload


def _device_message(identity_public: bytes, bundle: KeyBundle) -> bytes:
    return _DEVICE_CONTEXT + bytes([DEVICE_SIGNATURE_VERSION]) + identity_public + bundle.payload()


class IdentityKeys:
    """A user's identity secret. Construct with :meth:`generate`, :meth:`from_seed`
    (tests, vectors) or :meth:`from_bytes` (the identity file)."""

    __slots__ = ("signing",)

    def __init__(self, seed: bytes) -> None:
        self.signing = SigningKey(check_key(seed, "identity seed"))

    @classmethod
    def generate(cls) -> IdentityKeys:
        return cls(nacl.utils.random(KEY_SIZE))

    @classmethod
    def from_seed(cls, seed: bytes) -> IdentityKeys:
        """Deterministic identity from a 32-byte seed (BLAKE2b keyed by it)."""
        check_key(seed, "seed")
        derived: bytes = nacl.hash.blake2b(
            b"identity", digest_size=KEY_SIZE, key=seed, person=b"confrere-seed", encoder=RawEncoder
        )
        return cls(derived)

    @classmethod
    def from_bytes(cls, data: bytes) -> IdentityKeys:
        if not isinstance(data, bytes) or not data:
            raise Truncated("empty identity file")
        if data[0] != IDENTITY_FILE_VERSION:
            raise BadVersion(f"unknown identity file version {data[0]}")
        if len(data) != 1 + KEY_SIZE:
            raise Truncated(f"identity file must be {1 + KEY_SIZE} bytes")
        return cls(data[1:])

    def to_bytes(self) -> bytes:
        return bytes([IDENTITY_FILE_VERSION]) + bytes(self.signing)

    @property
    def public(self) -> bytes:
        return bytes(self.signing.verify_key)

    def sign(self, message: bytes) -> bytes:
        signature: bytes = self.signing.sign(message).signature
        return signature

    def record(self, user_id: str) -> IdentityRecord:
        """The self-signed record that publishes this key as ``user_id``'s."""
        unsigned = IdentityRecord(user_id, self.public, b"")
        return IdentityRecord(
            user_id, self.public, self.sign(_identity_message(unsigned.payload()))
        )


def parse_identity(data: bytes) -> IdentityRecord:
    """Parse and verify an identity record (its self-signature); raise a
    :class:`~protocol.crypto.errors.CryptoError` if it is not valid. The caller checks
    that ``user_id`` is the user it expected."""
    signature, payload = _split(data, IDENTITY_VERSION, MAX_IDENTITY, "identity record")
    fields = _unpack(payload, "identity record")
    if not isinstance(fields, list) or len(fields) != 2 or not isinstance(fields[0], str):
        raise Truncated("identity record payload must be [user, identity key]")
    if not fields[0]:
        raise Truncated("identity record names no user")
    record = IdentityRecord(fields[0], check_key(fields[1], "identity public key"), signature)
    verify(record.public, _identity_message(payload), signature, "identity record")
    return record


def parse_device_signature(data: bytes) -> DeviceSignature:
    """Parse a device signature (its format only: :func:`verify_device` checks it)."""
    signature, payload = _split(
        data, DEVICE_SIGNATURE_VERSION, MAX_DEVICE_SIGNATURE, "device signature"
    )
    fields = _unpack(payload, "device signature")
    if (
        not isinstance(fields, list)
        or len(fields) != 2
        or not all(isinstance(f, str) and f for f in fields)
    ):
        raise Truncated("device signature payload must be [user, device]")
    return DeviceSignature(fields[0], fields[1], signature)


def sign_device(identity: IdentityKeys, bundle: KeyBundle) -> DeviceSignature:
    """The identity's signature of ``bundle`` (a verified bundle of the identity's own
    user: the caller checks that): what makes that device verified."""
    return DeviceSignature(
        bundle.user_id, bundle.device_id, identity.sign(_device_message(identity.public, bundle))
    )


def verify_device(identity: IdentityRecord, bundle: KeyBundle, signature: DeviceSignature) -> None:
    """Raise :class:`BadSignature` unless ``signature`` is ``identity``'s over exactly
    ``bundle``, and all three name the same user (and device)."""
    if not (identity.user_id == bundle.user_id == signature.user_id):
        raise BadSignature("device signature: identity, bundle and signature name other users")
    if signature.device_id != bundle.device_id:
        raise BadSignature("device signature: it names another device than the bundle")
    verify(
        identity.public,
        _device_message(identity.public, bundle),
        signature.signature,
        "device signature",
    )


def device_verified(
    identity: IdentityRecord | None, bundle: KeyBundle, signature: DeviceSignature | None
) -> bool:
    """Whether ``bundle`` carries a valid signature of its user's ``identity``."""
    if identity is None or signature is None:
        return False
    try:
        verify_device(identity, bundle, signature)
    except BadSignature:
        return False
    return True
