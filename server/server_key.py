"""The server key: encrypts server-visible documents (referral and identity documents)
at rest, in the attachment stream format of :mod:`protocol.crypto.attachment`.

Where it comes from, first match wins:

1. ``CONFRERE_SERVER_KEY``: base64 of 32 random bytes (``python -c "import base64, os;
   print(base64.b64encode(os.urandom(32)).decode())"``). Every node of a deployment
   must have the same one: put it in the secret store of the deployment.
2. ``CONFRERE_SERVER_KEY_FILE``, else ``server.key`` beside the SQLite database (the
   embedded default: ``./var/server.key``), else ``./var/server.key``: read if it
   exists, otherwise generated and written with mode 0600.

A node whose database is not SQLite and that has neither setting refuses to start
(:class:`MissingServerKey`): nodes on other machines would generate keys of their own
and could not read each other's documents. The key id
(:attr:`ServerKey.id`, a hash of the key) is stored with each document and each sealed
field, so a document encrypted under another key is reported as such instead of failing
as tampered. The key itself never appears in logs or in ``repr``. :meth:`ServerKey.seal`
and :meth:`ServerKey.unseal` are the one way documents go to and come from the blob
store; :meth:`ServerKey.seal_field` and :meth:`ServerKey.open_field` the one way
patient data the server must read (a referral's patient fields and message) go to and
come from the database.

**Rotation.** Put the new key in ``CONFRERE_SERVER_KEY`` and the old one in
``CONFRERE_SERVER_KEY_PREVIOUS`` (comma-separated base64, several rotations) on every
node, then restart the nodes. New documents and fields are sealed under the new key;
those sealed under a previous key are read with it (the stored key id says which). A
previous key may be dropped once nothing sealed under it is kept any more.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import stat
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import nacl.bindings
import nacl.exceptions
import nacl.hash
import nacl.utils
from nacl.encoding import RawEncoder

from protocol.crypto.attachment import Decryptor, Encryptor
from protocol.crypto.errors import BadKey, BadVersion, CryptoError, Tampered, Truncated

from .config import Settings

__all__ = ["MissingServerKey", "ServerKey", "key_file_path", "load_server_key"]

log = logging.getLogger("confrere")

KEY_SIZE = 32


class MissingServerKey(RuntimeError):
    """A deployment that may have several nodes (its database is not SQLite) names no
    shared key."""


FIELD_PREFIX = "sealed:"  # a field sealed under the server key, in a text column
FIELD_VERSION = 1
_FIELD_AD = b"confrere/field"
_NONCE = 24


@dataclass(frozen=True, slots=True)
class ServerKey:
    key: bytes = field(repr=False)
    previous: tuple[bytes, ...] = field(default=(), repr=False)  # rotated out: read only

    @property
    def id(self) -> str:
        """16 hex digits naming the key (BLAKE2b, not reversible)."""
        return _key_id(self.key).hex()

    def for_id(self, key_id: str | None) -> ServerKey | None:
        """This key, or the previous key, whose id is ``key_id``; None if none is."""
        if key_id == self.id:
            return self
        for old in self.previous:
            if _key_id(old).hex() == key_id:
                return ServerKey(old)
        return None

    def seal_field(self, plain: bytes, purpose: str) -> str:
        """``plain`` encrypted for a text column: ``"sealed:" || base64(0x01 || key id
        (8) || nonce (24) || XChaCha20-Poly1305(plain, ad = "confrere/field" ||
        purpose))``. ``purpose`` (e.g. ``"referral.patient"``) binds it to its column:
        a value moved to another column does not open."""
        nonce = nacl.utils.random(_NONCE)
        sealed = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
            plain, _FIELD_AD + purpose.encode(), nonce, self.key
        )
        raw = bytes([FIELD_VERSION]) + _key_id(self.key) + nonce + sealed
        return FIELD_PREFIX + base64.b64encode(raw).decode("ascii")

    def open_field(self, text: str, purpose: str) -> bytes:
        """The plaintext of :meth:`seal_field`'s ``text``, under this key or a previous
        one; raises :class:`CryptoError` (never the plaintext in its message)."""
        try:
            raw = base64.b64decode(text.removeprefix(FIELD_PREFIX), validate=True)
        except (binascii.Error, ValueError):
            raise Truncated("a sealed field that is not base64") from None
        if len(raw) < 1 + 8 + _NONCE + 16 or not text.startswith(FIELD_PREFIX):
            raise Truncated("a sealed field too short")
        if raw[0] != FIELD_VERSION:
            raise BadVersion(f"unknown sealed field version {raw[0]}")
        key = self.for_id(raw[1:9].hex())
        if key is None:
            raise BadKey(f"a field sealed under server key {raw[1:9].hex()}, not known here")
        try:
            plain: bytes = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
                raw[9 + _NONCE :], _FIELD_AD + purpose.encode(), raw[9 : 9 + _NONCE], key.key
            )
        except nacl.exceptions.CryptoError:
            raise Tampered("a sealed field does not decrypt") from None
        return plain

    async def seal(self, plain: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """``plain`` encrypted as it streams (a fresh random header per document)."""
        encryptor = Encryptor(self.key)
        async for chunk in plain:
            out = encryptor.update(chunk)
            if out:
                yield out
        yield encryptor.finish()

    async def unseal(
        self, source: AsyncGenerator[bytes, None], name: str
    ) -> AsyncGenerator[bytes, None]:
        """The plaintext of a sealed document as it streams; ``source`` is closed in
        any case. Raises :class:`CryptoError` (logged, with ``name``) on a document that
        does not decrypt, which is after the first bytes went out: the client sees a
        cut body."""
        decryptor = Decryptor(self.key)
        try:
            async for chunk in source:
                out = decryptor.update(chunk)
                if out:
                    yield out
            last = decryptor.finish()
            if last:
                yield last
        except CryptoError as exc:
            log.error("document %s does not decrypt: %s", name, exc)
            raise
        finally:
            await source.aclose()


def _key_id(key: bytes) -> bytes:
    digest: bytes = nacl.hash.blake2b(
        key, digest_size=8, person=b"confrere-keyid", encoder=RawEncoder
    )
    return digest


def _decode(text: str, where: str) -> ServerKey:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != KEY_SIZE:
        raise ValueError(f"{where} must hold base64 of exactly {KEY_SIZE} bytes")
    return ServerKey(raw)


def _with_previous(key: ServerKey, settings: Settings) -> ServerKey:
    olds = [p for p in settings.server_key_previous.split(",") if p.strip()]
    previous = tuple(_decode(p, "CONFRERE_SERVER_KEY_PREVIOUS").key for p in olds)
    return ServerKey(key.key, tuple(k for k in previous if k != key.key))


def key_file_path(settings: Settings) -> Path:
    """The key file used when ``CONFRERE_SERVER_KEY`` is unset."""
    if settings.server_key_file:
        return Path(settings.server_key_file)
    scheme, _, rest = settings.database_url.partition("://")
    if scheme == "sqlite":
        database = Path(rest[1:] if rest.startswith("/") else rest)
        return database.parent / "server.key"
    return Path("var/server.key")


def load_server_key(settings: Settings) -> ServerKey:
    """The key the settings name, with the previous keys (see the module docstring);
    blocking file I/O."""
    return _with_previous(_current_key(settings), settings)


def _current_key(settings: Settings) -> ServerKey:
    if settings.server_key:
        return _decode(settings.server_key, "CONFRERE_SERVER_KEY")
    if not settings.database_url.startswith("sqlite:") and not settings.server_key_file:
        raise MissingServerKey(
            "CONFRERE_SERVER_KEY is required when the database is not SQLite: every node"
            " of a deployment needs the same key to read the documents (or name a shared"
            " CONFRERE_SERVER_KEY_FILE)"
        )
    path = key_file_path(settings)
    if not path.exists():
        _create(path)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("server key file %s is readable by others (mode %o)", path, mode)
    return _decode(path.read_text("ascii"), f"server key file {path}")


def _create(path: Path) -> None:
    """Write a new key to ``path`` unless another process does so first: the key goes
    to a private temporary file, then is linked to its name (atomic, never overwrites)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    key = ServerKey(nacl.utils.random(KEY_SIZE))
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temp.unlink(missing_ok=True)  # a leftover of a crash: never write through it
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as file:
            file.write(base64.b64encode(key.key).decode("ascii") + "\n")
            file.flush()
            os.fsync(file.fileno())
        os.link(temp, path)
    except FileExistsError:
        return  # another node or process won: use its key
    finally:
        temp.unlink(missing_ok=True)
    log.info("generated a server key in %s (key id %s)", path, key.id)
