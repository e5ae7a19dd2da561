"""The blob store interface: opaque bytes under server-chosen keys.

Guarantees every adapter gives (checked by ``tests/storage/test_blob_contract.py``, run
against each adapter):

- ``put`` is all or nothing: the blob becomes visible, whole, only when ``put``
  returns. If the chunk source raises (a client that disconnects, a size limit
  exceeded), the task is cancelled, or the store fails, ``put`` re-raises and nothing
  of the key is left behind: no partial object, no temporary file, no pending
  multipart upload. A ``put`` to an existing key replaces it atomically.
- ``put`` never holds the whole blob in memory: it consumes the source chunk by chunk
  and buffers at most one write unit (the local adapter's write buffer, the S3
  adapter's part size).
- ``open`` raises :class:`~storage.errors.NotFound` for a missing key before yielding
  anything; the iterator it returns yields the blob's bytes in order and releases
  its file or connection when exhausted, closed (``aclose``) or garbage-collected.
- ``delete`` is idempotent: deleting a missing key is not an error.
- Keys are the server's own ids (:func:`check_key`): never a client's file name, so
  no key can name a path outside the store. An invalid key raises ``ValueError``.

Failures of the backend (disk, network, credentials) raise
:class:`~storage.errors.Unavailable`.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, AsyncIterable
from typing import Protocol

__all__ = ["BlobStore", "check_key"]

_KEY = re.compile(r"[A-Za-z0-9_-]{8,128}")


def check_key(key: str) -> str:
    """Return ``key`` if it is a valid blob key (8-128 url-safe characters: letters,
    digits, ``-`` and ``_``), else raise ``ValueError``."""
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise ValueError(f"invalid blob key {key!r}")
    return key


class BlobStore(Protocol):
    """Construct with :func:`storage.blobs.open_blobs`; call :meth:`close` when done."""

    async def close(self) -> None:
        """Release connections; a second call does nothing."""

    async def ping(self) -> None:
        """Raise :class:`~storage.errors.Unavailable` if the store cannot be used."""

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        """Store the concatenated ``chunks`` under ``key``; return the size in bytes."""

    async def open(self, key: str) -> AsyncGenerator[bytes, None]:
        """The blob's bytes, in chunks; :class:`~storage.errors.NotFound` if missing."""

    async def delete(self, key: str) -> None:
        """Remove the blob if it exists."""

    async def exists(self, key: str) -> bool: ...

    async def presigned_url(self, key: str, ttl_s: int) -> str | None:
        """A URL anyone holding it can GET the blob from for ``ttl_s`` seconds, or
        ``None`` if this store cannot issue one (the server then streams the blob)."""
