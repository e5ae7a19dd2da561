"""Per-room sender keys (as Megolm and Signal groups): one encryption per message,
whatever the size of the room.

Each sending device has, per room, a *sender key*: a random 16-byte session id and a
32-byte chain key at an index. The chain ratchets forward with keyed BLAKE2b::

    message key(i) = BLAKE2b-256(key=chain(i), data=0x01, person="confrere-ratchet")
    chain(i + 1)   = BLAKE2b-256(key=chain(i), data=0x02, person="confrere-ratchet")

so whoever holds the chain at index ``i`` can read messages ``i, i+1, ...`` and none
before. A message is encrypted once with XChaCha20-Poly1305 under its message key, then
signed with the sender device's Ed25519 key::

    message = version 0x01 || session id (16) || index (4, big-endian) || nonce (24)
              || ciphertext (plaintext + 16-byte tag) || signature (64)
    context = b"confrere/msg" || len16(room id) || room id || len16(device id) || device id
              || version || session id || index || nonce
    ciphertext = XChaCha20-Poly1305(key=message key, nonce, plaintext, ad=context)
    signature  = Ed25519(context || ciphertext)

Room id and sender device are bound into both the AEAD and the signature: a message
moved to another room, or claimed by another device, fails. The receiver verifies the
signature before anything else, derives keys of skipped indexes within a window
(:data:`MAX_SKIP`), and refuses an index it has already decrypted. State changes only
after a message decrypted successfully.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import nacl.bindings
import nacl.exceptions
import nacl.hash
import nacl.utils
from nacl.encoding import RawEncoder

from .errors import BadVersion, Replayed, Tampered, TooFarAhead, Truncated, UnknownSession
from .keys import KEY_SIZE, SIGNATURE_SIZE, DeviceKeys, check_key, verify

__all__ = [
    "MAX_SKIP",
    "MESSAGE_VERSION",
    "InboundSession",
    "MessageHeader",
    "OutboundSession",
    "SenderKey",
    "parse_message",
]

MESSAGE_VERSION = 1
SESSION_ID_SIZE = 16
NONCE_SIZE = 24
TAG_SIZE = 16
MAX_INDEX = 2**32 - 1
MAX_SKIP = 2000  # message keys derived ahead, and kept for late messages, per sender key
_HEADER_SIZE = 1 + SESSION_ID_SIZE + 4 + NONCE_SIZE
_PERSON = b"confrere-ratchet"


def _kdf(chain_key: bytes, label: bytes) -> bytes:
    out: bytes = nacl.hash.blake2b(
        label, digest_size=KEY_SIZE, key=chain_key, person=_PERSON, encoder=RawEncoder
    )
    return out


def message_key(chain_key: bytes) -> bytes:
    return _kdf(chain_key, b"\x01")


def next_chain(chain_key: bytes) -> bytes:
    return _kdf(chain_key, b"\x02")


def _lp(text: str) -> bytes:
    raw = text.encode("utf-8")
    return len(raw).to_bytes(2, "big") + raw


def _context(room_id: str, device_id: str, header: bytes) -> bytes:
    return b"confrere/msg" + _lp(room_id) + _lp(device_id) + header


@dataclass(frozen=True, slots=True)
class SenderKey:
    """What a receiver needs to read a sender's messages from ``index`` on: shared with
    each member device by :mod:`protocol.crypto.share`."""

    room_id: str
    device_id: str
    session_id: bytes
    chain_key: bytes
    index: int
    sign_public: bytes

    def __post_init__(self) -> None:
        check_key(self.session_id, "session id", SESSION_ID_SIZE)
        check_key(self.chain_key, "chain key")
        check_key(self.sign_public, "Ed25519 public key")
        if not 0 <= self.index <= MAX_INDEX:
            raise Truncated(f"sender key index {self.index} out of range")


@dataclass(frozen=True, slots=True)
class MessageHeader:
    """The clear part of a message: which sender key and index decrypt it."""

    session_id: bytes
    index: int
    nonce: bytes


def parse_message(data: bytes) -> MessageHeader:
    """Read a message's header without decrypting; raise ``BadVersion``/``Truncated``."""
    if not isinstance(data, bytes) or not data:
        raise Truncated("empty message")
    if data[0] != MESSAGE_VERSION:
        raise BadVersion(f"unknown message version {data[0]}")
    if len(data) < _HEADER_SIZE + TAG_SIZE + SIGNATURE_SIZE:
        raise Truncated("message too short")
    session_id = data[1 : 1 + SESSION_ID_SIZE]
    index = int.from_bytes(data[1 + SESSION_ID_SIZE : 5 + SESSION_ID_SIZE], "big")
    return MessageHeader(session_id, index, data[5 + SESSION_ID_SIZE : _HEADER_SIZE])


class OutboundSession:
    """The sending side of one sender key: this device, one room."""

    __slots__ = ("chain_key", "device_id", "index", "keys", "room_id", "session_id")

    def __init__(
        self,
        room_id: str,
        device_id: str,
        keys: DeviceKeys,
        *,
        session_id: bytes | None = None,
        chain_key: bytes | None = None,
        index: int = 0,
    ) -> None:
        """New random sender key unless ``session_id``/``chain_key`` are given (vectors)."""
        self.room_id = room_id
        self.device_id = device_id
        self.keys = keys
        self.session_id = check_key(
            session_id or nacl.utils.random(SESSION_ID_SIZE), "session id", SESSION_ID_SIZE
        )
        self.chain_key = check_key(chain_key or nacl.utils.random(KEY_SIZE), "chain key")
        self.index = index

    def sender_key(self) -> SenderKey:
        """The key to share now: receivers read from the next message on."""
        return SenderKey(
            self.room_id,
            self.device_id,
            self.session_id,
            self.chain_key,
            self.index,
            self.keys.sign_public,
        )

    def encrypt(self, plaintext: bytes, *, nonce: bytes | None = None) -> bytes:
        """Encrypt and sign the next message; the chain moves on (its key is forgotten).
        ``nonce``: 24 bytes for test vectors only; random otherwise."""
        if self.index > MAX_INDEX:
            raise TooFarAhead("sender key exhausted: rotate it")
        nonce = check_key(nonce or nacl.utils.random(NONCE_SIZE), "nonce", NONCE_SIZE)
        header = bytes([MESSAGE_VERSION]) + self.session_id + self.index.to_bytes(4, "big") + nonce
        context = _context(self.room_id, self.device_id, header)
        ciphertext: bytes = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
            plaintext, context, nonce, message_key(self.chain_key)
        )
        signature = self.keys.sign(context + ciphertext)
        self.chain_key = next_chain(self.chain_key)
        self.index += 1
        return header + ciphertext + signature


class InboundSession:
    """The receiving side of one sender key (one sender device, one room)."""

    __slots__ = ("_chain", "_next", "_skipped", "first_index", "key", "window")

    def __init__(self, key: SenderKey, window: int = MAX_SKIP) -> None:
        self.key = key
        self.window = window
        self.first_index = key.index
        self._chain = key.chain_key  # chain at index self._next
        self._next = key.index
        self._skipped: OrderedDict[int, bytes] = OrderedDict()  # index -> message key

    @property
    def session_id(self) -> bytes:
        return self.key.session_id

    def decrypt(self, room_id: str, device_id: str, data: bytes) -> tuple[int, bytes]:
        """Verify and decrypt a message of ``device_id`` in ``room_id``; return
        ``(index, plaintext)``. Raises ``BadVersion``, ``Truncated``, ``UnknownSession``
        (another sender key, room or device; or an index before the one shared),
        ``BadSignature``, ``Replayed``, ``TooFarAhead`` or ``Tampered``."""
        head = parse_message(data)
        if head.session_id != self.key.session_id:
            raise UnknownSession("message of another sender key")
        if room_id != self.key.room_id or device_id != self.key.device_id:
            raise UnknownSession("this sender key belongs to another room or device")
        body = data[: len(data) - SIGNATURE_SIZE]
        signature = data[len(data) - SIGNATURE_SIZE :]
        context = _context(room_id, device_id, body[:_HEADER_SIZE])
        verify(self.key.sign_public, context + body[_HEADER_SIZE:], signature, "message")
        index = head.index
        if index < self.first_index:
            raise UnknownSession(f"message {index} precedes the sender key we hold")
        skipped: list[tuple[int, bytes]] = []
        chain = self._chain
        if index < self._next:
            key = self._skipped.get(index)
            if key is None:
                raise Replayed(f"message {index} was already decrypted (or is too old)")
        else:
            if index - self._next > self.window:
                raise TooFarAhead(f"message {index} is more than {self.window} ahead")
            for i in range(self._next, index):
                skipped.append((i, message_key(chain)))
                chain = next_chain(chain)
            key = message_key(chain)
            chain = next_chain(chain)
        try:
            plaintext: bytes = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
                body[_HEADER_SIZE:], context, head.nonce, key
            )
        except nacl.exceptions.CryptoError:
            raise Tampered("message does not authenticate") from None
        # Success: now, and only now, the state moves.
        if index < self._next:
            del self._skipped[index]
        else:
            self._skipped.update(skipped)
            self._chain = chain
            self._next = index + 1
            while len(self._skipped) > self.window:
                self._skipped.popitem(last=False)
        return index, plaintext
