"""Local-disk adapter of :class:`storage.blobs.base.BlobStore`: the embedded default.

Layout under the root directory::

    root/.incoming/<key>.<random>.part   uploads in progress (same file system)
    root/<k[:2]>/<key>                   finished blobs, fanned out by the key's start

``put`` writes a temporary file in ``.incoming``, fsyncs it, renames it to its final
name (atomic within one file system) and fsyncs the directory: a blob is visible only
whole, and survives power loss once ``put`` returned. A failed ``put`` removes its
temporary file before re-raising; temporary files a crash left behind are removed when
the store is next opened if they are over a day old (no upload lasts that long, so
another node's upload in progress is never touched). Keys are checked by
:func:`~storage.blobs.base.check_key`, so a path never leaves the root. File I/O runs
in worker threads, in units of 1 MiB.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
import time
from collections.abc import AsyncGenerator, AsyncIterable, Callable
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import NotFound, Unavailable
from .base import check_key

__all__ = ["LocalBlobStore", "open_local"]

log = logging.getLogger("confrere.storage.blobs")

IO_UNIT = 1024 * 1024  # bytes per write and per read
_INCOMING = ".incoming"
_STALE_S = 24 * 3600


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(file: BinaryIO, data: bytes) -> None:
    file.write(data)


def _commit(file: BinaryIO, temp: Path, final: Path) -> None:
    file.flush()
    os.fsync(file.fileno())
    file.close()
    final.parent.mkdir(exist_ok=True)
    os.replace(temp, final)
    _fsync_dir(final.parent)


def _discard(file: BinaryIO, temp: Path) -> None:
    with contextlib.suppress(OSError):
        file.close()
    with contextlib.suppress(OSError):
        temp.unlink(missing_ok=True)


class LocalBlobStore:
    """Use :func:`open_local` to construct."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.incoming = root / _INCOMING

    def path(self, key: str) -> Path:
        """Where the blob ``key`` lives (for tests and operators)."""
        check_key(key)
        return self.root / key[:2] / key

    def _setup(self) -> None:
        self.incoming.mkdir(parents=True, exist_ok=True)
        cutoff = time.time() - _STALE_S
        for leftover in self.incoming.iterdir():
            with contextlib.suppress(OSError):
                if leftover.stat().st_mtime < cutoff:
                    leftover.unlink()
                    log.info("removed stale partial upload %s", leftover.name)

    async def open_store(self) -> None:
        try:
            await asyncio.to_thread(self._setup)
        except OSError as exc:
            raise Unavailable(f"blob directory {self.root} is unusable: {exc}") from exc

    async def close(self) -> None:
        """Nothing to release: files are opened per call."""

    async def ping(self) -> None:
        ok = await asyncio.to_thread(os.access, self.incoming, os.W_OK | os.X_OK)
        if not ok:
            raise Unavailable(f"blob directory {self.root} is not writable")

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        final = self.path(key)

        def create() -> tuple[BinaryIO, Path]:
            fd, name = tempfile.mkstemp(prefix=f"{key}.", suffix=".part", dir=self.incoming)
            return os.fdopen(fd, "wb"), Path(name)

        try:
            file, temp = await asyncio.to_thread(create)
        except OSError as exc:
            raise Unavailable(f"cannot create a blob file: {exc}") from exc
        size = 0
        try:
            buffer = bytearray()
            async for chunk in chunks:
                buffer += chunk
                size += len(chunk)
                if len(buffer) >= IO_UNIT:
                    data, buffer = bytes(buffer), bytearray()
                    await self._io(_write_all, file, data)
            if buffer:
                await self._io(_write_all, file, bytes(buffer))
            await self._io(_commit, file, temp, final)
        except BaseException:
            # Synchronous on purpose: it must run even when this task is being cancelled.
            _discard(file, temp)
            raise
        return size

    @staticmethod
    async def _io(fn: Callable[..., None], *args: Any) -> None:
        try:
            await asyncio.to_thread(fn, *args)
        except OSError as exc:
            raise Unavailable(f"blob write failed: {exc}") from exc

    async def open(self, key: str) -> AsyncGenerator[bytes, None]:
        path = self.path(key)
        try:
            file = await asyncio.to_thread(path.open, "rb")
        except FileNotFoundError:
            raise NotFound(f"no blob {key}") from None
        except OSError as exc:
            raise Unavailable(f"cannot open blob {key}: {exc}") from exc
        return self._read(file)

    @staticmethod
    async def _read(file: BinaryIO) -> AsyncGenerator[bytes, None]:
        try:
            while True:
                try:
                    chunk = await asyncio.to_thread(file.read, IO_UNIT)
                except OSError as exc:
                    raise Unavailable(f"blob read failed: {exc}") from exc
                if not chunk:
                    return
                yield chunk
        finally:
            file.close()

    async def delete(self, key: str) -> None:
        path = self.path(key)
        try:
            await asyncio.to_thread(path.unlink, missing_ok=True)
        except OSError as exc:
            raise Unavailable(f"cannot delete blob {key}: {exc}") from exc

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self.path(key).is_file)

    async def presigned_url(self, key: str, ttl_s: int) -> str | None:
        """Local files have no URL of their own: the server streams them."""
        check_key(key)
        return None


async def open_local(root: str | Path) -> LocalBlobStore:
    """Open (creating if needed) the blob directory ``root``."""
    store = LocalBlobStore(Path(root))
    await store.open_store()
    return store
