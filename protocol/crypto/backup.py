"""Key backup: the sender keys a device holds, encrypted under a key only the user's
recovery phrase (or one of their devices) knows, stored by the server (SPEC.md §11.7).

Recovery phrase: 120 random bits written as 24 characters of the alphabet
:data:`PHRASE_ALPHABET` (no 0/o, 1/l), in six groups of four joined by ``-``.
Whoever types it back may mix cases, spaces and dashes: :func:`normalize_phrase`
keeps the 24 characters.

Backup key (32 bytes) = Argon2id (libsodium ``crypto_pwhash``, ALG_ARGON2ID13) of the
normalized phrase in ASCII, with the backup's random 16-byte ``salt`` and its
``opslimit``/``memlimit`` (stored with the backup, in clear: they are not secret).
``check`` = BLAKE2b-256(key = backup key, data = ``"check"``, personal =
``"confrere-backup"``) is stored too, so that a device tells a mistyped phrase from a
damaged backup; it reveals nothing the ciphertexts do not.

Each sender key is one *entry*, replaced whenever a device uploads it again::

    entry id = hex(BLAKE2b-128(key = backup key, data = len16(room) || len16(device)
                                || session id, personal = "confrere-bkp-id"))
    entry    = 0x01 || nonce (24) || XChaCha20-Poly1305(backup key, nonce,
                    msgpack {room, device, sid, ck, i, spk}, ad = "confrere/backup" ||
                    0x01 || entry id)

The id is keyed, so the server learns neither rooms nor senders from it, and bound into
the AEAD, so the server cannot swap two entries.

One more entry holds the user's identity secret (cross-signing,
:mod:`protocol.crypto.identity`), so that a device restored from the phrase is a
verified device: its id is the same keyed hash of ``"identity"`` (no sender key's data
is that short), its plaintext ``msgpack {identity: identity file (bin 33)}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgpack
import nacl.bindings
import nacl.exceptions
import nacl.hash
import nacl.pwhash.argon2id
import nacl.utils
from nacl.encoding import RawEncoder

from .errors import BadKey, BadVersion, Tampered, Truncated
from .keys import KEY_SIZE, check_key
from .sender_keys import SESSION_ID_SIZE, SenderKey

__all__ = [
    "BACKUP_VERSION",
    "ENTRY_ID_CHARS",
    "MAX_ENTRY",
    "MEMLIMIT",
    "OPSLIMIT",
    "PHRASE_ALPHABET",
    "BackupParams",
    "backup_check",
    "derive_backup_key",
    "entry_id",
    "identity_entry_id",
    "open_identity_entry",
    "seal_identity_entry",
    "new_phrase",
    "normalize_phrase",
    "open_entry",
    "seal_entry",
    "sender_key_from_wire",
    "sender_key_to_wire",
]

BACKUP_VERSION = 1
PHRASE_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # 32 symbols: 5 bits each
PHRASE_CHARS = 24  # 120 bits
SALT_SIZE = 16
OPSLIMIT = 3  # Argon2id passes
MEMLIMIT = 64 * 1024 * 1024  # bytes: 64 MiB
MAX_OPSLIMIT = 10
MAX_MEMLIMIT = 256 * 1024 * 1024  # a browser must be able to derive it
ENTRY_ID_CHARS = 32
MAX_ENTRY = 512  # bytes: ids of at most 64 characters keep entries under ~300
_NONCE = 24
_AD = b"confrere/backup"


def new_phrase() -> str:
    """A fresh recovery phrase: ``abcd-efgh-…`` (24 characters, 120 bits)."""
    raw = int.from_bytes(nacl.utils.random(PHRASE_CHARS * 5 // 8), "big")
    chars = [PHRASE_ALPHABET[(raw >> (5 * i)) & 31] for i in range(PHRASE_CHARS)]
    return "-".join("".join(chars[i : i + 4]) for i in range(0, PHRASE_CHARS, 4))


def normalize_phrase(phrase: str) -> str:
    """The 24 characters of a typed phrase (case, spaces and dashes ignored); raise
    :class:`BadKey` if it cannot be one."""
    kept = "".join(c for c in phrase.lower() if c not in " -\t\n")
    if len(kept) != PHRASE_CHARS or any(c not in PHRASE_ALPHABET for c in kept):
        raise BadKey(f"a recovery phrase has {PHRASE_CHARS} letters and digits")
    return kept


@dataclass(frozen=True, slots=True)
class BackupParams:
    """What derives the backup key from the phrase, stored in clear with the backup."""

    salt: bytes
    opslimit: int = OPSLIMIT
    memlimit: int = MEMLIMIT

    def __post_init__(self) -> None:
        check_key(self.salt, "backup salt", SALT_SIZE)
        if not nacl.pwhash.argon2id.OPSLIMIT_MIN <= self.opslimit <= MAX_OPSLIMIT:
            raise BadKey(f"opslimit must be 1 to {MAX_OPSLIMIT}")
        if not nacl.pwhash.argon2id.MEMLIMIT_MIN <= self.memlimit <= MAX_MEMLIMIT:
            raise BadKey(f"memlimit must be 8 KiB to {MAX_MEMLIMIT} bytes")

    @classmethod
    def generate(cls) -> BackupParams:
        return cls(nacl.utils.random(SALT_SIZE))


def derive_backup_key(phrase: str, params: BackupParams) -> bytes:
    """Argon2id of the normalized phrase (slow on purpose: 64 MiB, 3 passes)."""
    key: bytes = nacl.pwhash.argon2id.kdf(
        KEY_SIZE,
        normalize_phrase(phrase).encode("ascii"),
        params.salt,
        opslimit=params.opslimit,
        memlimit=params.memlimit,
    )
    return key


def _blake(data: bytes, key: bytes, person: bytes, size: int = KEY_SIZE) -> bytes:
    out: bytes = nacl.hash.blake2b(
        data, digest_size=size, key=key, person=person, encoder=RawEncoder
    )
    return out


def backup_check(backup_key: bytes) -> bytes:
    """What the server keeps to tell a right phrase from a wrong one (32 bytes)."""
    return _blake(b"check", check_key(backup_key, "backup key"), b"confrere-backup")


def _lp(text: str) -> bytes:
    raw = text.encode("utf-8")
    return len(raw).to_bytes(2, "big") + raw


def entry_id(backup_key: bytes, room_id: str, device_id: str, session_id: bytes) -> str:
    """The opaque id of a sender key's entry: 32 hexadecimal characters."""
    data = _lp(room_id) + _lp(device_id) + check_key(session_id, "session id", SESSION_ID_SIZE)
    return _blake(data, check_key(backup_key, "backup key"), b"confrere-bkp-id", 16).hex()


def sender_key_to_wire(key: SenderKey) -> dict[str, Any]:
    """A sender key as a msgpack map (backup entries, ``room_keys`` to-device)."""
    return {
        "room": key.room_id,
        "device": key.device_id,
        "sid": key.session_id,
        "ck": key.chain_key,
        "i": key.index,
        "spk": key.sign_public,
    }


def sender_key_from_wire(wire: object) -> SenderKey:
    """The inverse of :func:`sender_key_to_wire`; ``Truncated``/``BadKey`` if malformed."""
    if not isinstance(wire, dict):
        raise Truncated("a sender key is a map")
    room, device, index = wire.get("room"), wire.get("device"), wire.get("i")
    if not isinstance(room, str) or not room or not isinstance(device, str) or not device:
        raise Truncated("a sender key names its room and device")
    if not isinstance(index, int) or isinstance(index, bool):
        raise Truncated("a sender key's 'i' is an integer")
    return SenderKey(room, device, wire.get("sid"), wire.get("ck"), index, wire.get("spk"))  # type: ignore[arg-type]


def identity_entry_id(backup_key: bytes) -> str:
    """The id of the entry holding the identity secret."""
    return _blake(b"identity", check_key(backup_key, "backup key"), b"confrere-bkp-id", 16).hex()


def _seal(backup_key: bytes, eid: str, value: dict[str, Any], nonce: bytes | None) -> bytes:
    nonce = check_key(nonce or nacl.utils.random(_NONCE), "nonce", _NONCE)
    plaintext: bytes = msgpack.packb(value, use_bin_type=True)
    sealed: bytes = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
        plaintext, _entry_ad(eid), nonce, backup_key
    )
    return bytes([BACKUP_VERSION]) + nonce + sealed


def _open(backup_key: bytes, eid: str, data: bytes) -> object:
    if not isinstance(data, bytes) or not data:
        raise Truncated("empty backup entry")
    if data[0] != BACKUP_VERSION:
        raise BadVersion(f"unknown backup entry version {data[0]}")
    if len(data) < 1 + _NONCE + 16 or len(data) > MAX_ENTRY:
        raise Truncated("backup entry size")
    try:
        plaintext: bytes = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
            data[1 + _NONCE :], _entry_ad(eid), data[1 : 1 + _NONCE], backup_key
        )
    except nacl.exceptions.CryptoError:
        raise Tampered("backup entry does not authenticate") from None
    try:
        return msgpack.unpackb(plaintext, raw=False)
    except (ValueError, msgpack.UnpackException, TypeError):
        raise Truncated("backup entry is not msgpack") from None


def seal_identity_entry(
    backup_key: bytes, identity_file: bytes, *, nonce: bytes | None = None
) -> tuple[str, bytes]:
    """``(entry id, entry)`` holding the identity secret (its identity file bytes)."""
    eid = identity_entry_id(backup_key)
    return eid, _seal(backup_key, eid, {"identity": identity_file}, nonce)


def open_identity_entry(backup_key: bytes, data: bytes) -> bytes:
    """The identity file bytes of the identity entry."""
    value = _open(backup_key, identity_entry_id(backup_key), data)
    if not isinstance(value, dict) or not isinstance(value.get("identity"), bytes):
        raise Truncated("not the identity entry")
    identity: bytes = value["identity"]
    return identity


def _entry_ad(eid: str) -> bytes:
    return _AD + bytes([BACKUP_VERSION]) + eid.encode("ascii")


def seal_entry(
    backup_key: bytes, key: SenderKey, *, nonce: bytes | None = None
) -> tuple[str, bytes]:
    """``(entry id, entry)`` for one sender key. ``nonce``: for test vectors only."""
    eid = entry_id(backup_key, key.room_id, key.device_id, key.session_id)
    return eid, _seal(backup_key, eid, sender_key_to_wire(key), nonce)


def open_entry(backup_key: bytes, eid: str, data: bytes) -> SenderKey:
    """The sender key of an entry; raises ``BadVersion``, ``Truncated``, ``Tampered``
    (another key, or the entry of another id), or ``BadKey``."""
    key = sender_key_from_wire(_open(backup_key, eid, data))
    if entry_id(backup_key, key.room_id, key.device_id, key.session_id) != eid:
        raise Tampered("backup entry is not the key its id names")
    return key
