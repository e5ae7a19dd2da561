"""Attachment streams: a file encrypted in fixed-size chunks, readable as it arrives.

A file gets its own random 32-byte key. Its ciphertext is libsodium's secretstream
(XChaCha20-Poly1305) with an explicit version byte in front::

    stream = version (1 byte, 0x01) || secretstream header (24)
             || chunk 1 || ... || chunk n
    chunk i = secretstream push(plaintext[(i-1)·CHUNK : i·CHUNK], ad=AD,
                                tag = FINAL for chunk n, MESSAGE before)   # CHUNK + 17 bytes
    AD = b"confrere/att" || version

Every chunk but the last holds exactly :data:`CHUNK` (64 KiB) bytes of plaintext; the
last holds 1 to ``CHUNK`` bytes (0 only for an empty file), so a file of ``n`` bytes has
``max(1, ceil(n / CHUNK))`` chunks and :func:`ciphertext_size` ``(n)`` bytes of
ciphertext. The FINAL tag makes truncation at a chunk boundary detectable; the
per-chunk tag detects any other change; reordering or dropping chunks breaks the
stream's internal nonce sequence. The version byte is authenticated through ``AD``.

:class:`Encryptor` and :class:`Decryptor` are sans-I/O: feed bytes, get bytes. The
decryptor never returns plaintext that has not been authenticated, but a stream is
only known to be complete when :meth:`Decryptor.finish` returns: discard everything it
produced if any call raises. The same format encrypts server-visible documents at rest
under the server's key (a fresh random header per file, as secretstream allows).

:class:`AttachmentRef` is what a message carries, inside its encrypted body, so that
its recipients can fetch and check the file: id, key, SHA-256 of the plaintext, size,
content type and an optional file name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import nacl.bindings as sodium
import nacl.exceptions
import nacl.utils

from ..filetypes import CONTENT_TYPES
from ..limits import MAX_ATTACHMENT, MAX_ID
from .errors import BadKey, BadVersion, Tampered, Truncated

__all__ = [
    "ATTACHMENT_VERSION",
    "CHUNK",
    "MAX_CIPHERTEXT",
    "STREAM_HEADER_SIZE",
    "AttachmentRef",
    "Decryptor",
    "Encryptor",
    "ciphertext_size",
    "decrypt",
    "encrypt",
    "new_key",
    "plaintext_size",
]

ATTACHMENT_VERSION = 1
CHUNK = 64 * 1024  # plaintext bytes per chunk (all chunks but the last are full)
KEY_SIZE = sodium.crypto_secretstream_xchacha20poly1305_KEYBYTES  # 32
ABYTES = sodium.crypto_secretstream_xchacha20poly1305_ABYTES  # 17 per chunk
STREAM_HEADER_SIZE = 1 + sodium.crypto_secretstream_xchacha20poly1305_HEADERBYTES  # 25
SHA256_SIZE = 32
MAX_FILE_NAME = 255  # characters of AttachmentRef.name
_AD = b"confrere/att" + bytes([ATTACHMENT_VERSION])
_TAG_MESSAGE = sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
_TAG_FINAL = sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL


def new_key() -> bytes:
    """A fresh random key for one file."""
    return nacl.utils.random(KEY_SIZE)


def _chunks(plaintext_size: int) -> int:
    return max(1, -(-plaintext_size // CHUNK))


def ciphertext_size(plaintext_size: int) -> int:
    """Exact ciphertext length of a file of ``plaintext_size`` bytes."""
    if plaintext_size < 0:
        raise ValueError("a size is never negative")
    return STREAM_HEADER_SIZE + plaintext_size + ABYTES * _chunks(plaintext_size)


def plaintext_size(ciphertext_size_: int) -> int | None:
    """The plaintext length a ciphertext of this length holds, or ``None`` if no
    plaintext encrypts to exactly that many bytes."""
    body = ciphertext_size_ - STREAM_HEADER_SIZE
    if body < ABYTES:
        return None
    full, rest = divmod(body, CHUNK + ABYTES)
    if rest == 0:
        size = full * CHUNK  # the last chunk is a full one
    elif rest > ABYTES or full == 0:
        size = full * CHUNK + rest - ABYTES  # (an empty file is one empty chunk)
    else:
        return None  # after full chunks, a partial last chunk holds at least one byte
    return size if ciphertext_size(size) == ciphertext_size_ else None


MAX_CIPHERTEXT = ciphertext_size(MAX_ATTACHMENT)  # 52 442 425 bytes for 50 MiB


def _check_key(key: object) -> bytes:
    if not isinstance(key, bytes) or len(key) != KEY_SIZE:
        raise BadKey(f"an attachment key is {KEY_SIZE} bytes")
    return key


class Encryptor:
    """Encrypts one file: :meth:`update` with each piece of plaintext, then
    :meth:`finish` once; concatenating every returned piece gives the stream."""

    __slots__ = ("_buffer", "_done", "_pending", "_state")

    def __init__(self, key: bytes) -> None:
        self._state = sodium.crypto_secretstream_xchacha20poly1305_state()
        header = sodium.crypto_secretstream_xchacha20poly1305_init_push(
            self._state, _check_key(key)
        )
        self._pending = bytes([ATTACHMENT_VERSION]) + header
        self._buffer = bytearray()
        self._done = False

    def _push(self, chunk: bytes, tag: int) -> bytes:
        return sodium.crypto_secretstream_xchacha20poly1305_push(self._state, chunk, _AD, tag)

    def update(self, plaintext: bytes) -> bytes:
        """Ciphertext of every chunk that is complete, and known not to be the last."""
        if self._done:
            raise ValueError("update after finish")
        self._buffer += plaintext
        out = [self._pending]
        self._pending = b""
        # Hold back a full chunk until more plaintext arrives: it may be the last one,
        # which must carry the FINAL tag.
        while len(self._buffer) > CHUNK:
            out.append(self._push(bytes(self._buffer[:CHUNK]), _TAG_MESSAGE))
            del self._buffer[:CHUNK]
        return b"".join(out)

    def finish(self) -> bytes:
        """The rest of the stream, ending with the FINAL chunk."""
        if self._done:
            raise ValueError("finish called twice")
        self._done = True
        out = self._pending + self._push(bytes(self._buffer), _TAG_FINAL)
        self._pending, self._buffer = b"", bytearray()
        return out


class Decryptor:
    """Decrypts one stream: :meth:`update` with each piece of ciphertext, then
    :meth:`finish` once. Raises :class:`~protocol.crypto.errors.BadVersion`,
    :class:`~protocol.crypto.errors.Tampered` or its subclass
    :class:`~protocol.crypto.errors.Truncated`; after an error the stream is dead."""

    __slots__ = ("_buffer", "_final", "_key", "_state")

    def __init__(self, key: bytes) -> None:
        self._key = _check_key(key)
        self._state: Any = None
        self._buffer = bytearray()
        self._final = False

    def _pull(self, chunk: bytes) -> bytes:
        try:
            plain, tag = sodium.crypto_secretstream_xchacha20poly1305_pull(self._state, chunk, _AD)
        except nacl.exceptions.CryptoError:
            raise Tampered("attachment chunk failed authentication") from None
        if tag == _TAG_FINAL:
            self._final = True
        elif tag != _TAG_MESSAGE:
            raise Tampered("attachment chunk has an unexpected tag")
        return plain

    def update(self, ciphertext: bytes) -> bytes:
        """Plaintext of every complete chunk received so far."""
        if self._final and ciphertext:
            raise Tampered("attachment stream continues after its final chunk")
        self._buffer += ciphertext
        if self._state is None:
            if len(self._buffer) < STREAM_HEADER_SIZE:
                return b""
            if self._buffer[0] != ATTACHMENT_VERSION:
                raise BadVersion(f"attachment stream version {self._buffer[0]} is unknown")
            self._state = sodium.crypto_secretstream_xchacha20poly1305_state()
            header = bytes(self._buffer[1:STREAM_HEADER_SIZE])
            sodium.crypto_secretstream_xchacha20poly1305_init_pull(self._state, header, self._key)
            del self._buffer[:STREAM_HEADER_SIZE]
        out = []
        size = CHUNK + ABYTES
        while len(self._buffer) >= size and not self._final:
            out.append(self._pull(bytes(self._buffer[:size])))
            del self._buffer[:size]
        if self._final and self._buffer:
            raise Tampered("attachment stream continues after its final chunk")
        return b"".join(out)

    def finish(self) -> bytes:
        """The last plaintext; raises :class:`Truncated` unless the FINAL chunk came."""
        if self._state is None:
            raise Truncated("attachment stream ends inside its header")
        out = b""
        if not self._final:
            if len(self._buffer) < ABYTES:
                raise Truncated("attachment stream ends before its final chunk")
            out = self._pull(bytes(self._buffer))
            self._buffer.clear()
            if not self._final:
                raise Truncated("attachment stream ends before its final chunk")
        return out


def encrypt(key: bytes, plaintext: bytes) -> bytes:
    """The whole stream for ``plaintext`` (for small files and tests)."""
    encryptor = Encryptor(key)
    return encryptor.update(plaintext) + encryptor.finish()


def decrypt(key: bytes, ciphertext: bytes) -> bytes:
    """The whole plaintext of a complete stream."""
    decryptor = Decryptor(key)
    return decryptor.update(ciphertext) + decryptor.finish()


@dataclass(frozen=True, slots=True)
class AttachmentRef:
    """An attachment as a message names it, inside the message's encrypted body.

    Wire form: a msgpack map ``{v: 1, id: str, key: bin 32, sha256: bin 32, size: int,
    type: str, name?: str}``; ``sha256`` and ``size`` are those of the plaintext.
    """

    id: str
    key: bytes
    sha256: bytes
    size: int
    content_type: str
    name: str | None = None

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "v": ATTACHMENT_VERSION,
            "id": self.id,
            "key": self.key,
            "sha256": self.sha256,
            "size": self.size,
            "type": self.content_type,
        }
        if self.name is not None:
            wire["name"] = self.name
        return wire

    @classmethod
    def from_wire(cls, wire: object) -> AttachmentRef:
        """Parse a reference decrypted from a message; raise ``BadVersion``, ``BadKey``
        or ``Truncated`` (not the structure version 1 announces)."""
        if not isinstance(wire, dict):
            raise Truncated("an attachment reference is a map")
        if wire.get("v") != ATTACHMENT_VERSION:
            raise BadVersion(f"attachment reference version {wire.get('v')!r} is unknown")
        id_, sha, size = wire.get("id"), wire.get("sha256"), wire.get("size")
        content_type, name = wire.get("type"), wire.get("name")
        if not isinstance(id_, str) or not 0 < len(id_) <= MAX_ID:
            raise Truncated("attachment reference: bad 'id'")
        if not isinstance(sha, bytes) or len(sha) != SHA256_SIZE:
            raise Truncated("attachment reference: bad 'sha256'")
        if isinstance(size, bool) or not isinstance(size, int) or not 0 < size <= MAX_ATTACHMENT:
            raise Truncated("attachment reference: bad 'size'")
        if content_type not in CONTENT_TYPES:
            raise Truncated("attachment reference: bad 'type'")
        if name is not None and (not isinstance(name, str) or not 0 < len(name) <= MAX_FILE_NAME):
            raise Truncated("attachment reference: bad 'name'")
        return cls(id_, _check_key(wire.get("key")), sha, size, content_type, name)
