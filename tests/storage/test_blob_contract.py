"""The blob store contract (storage/blobs/base.py docstring), identical for every adapter:
local disk, and S3 through aioboto3 against a real S3-compatible server over HTTP."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import httpx
import pytest
from blob_backends import BlobBackend

from storage.blobs import BlobStore, open_blobs
from storage.errors import NotFound

MiB = 1024 * 1024


@pytest.fixture
async def blobs(blob_backend: BlobBackend) -> AsyncIterator[BlobStore]:
    store = await open_blobs(blob_backend.url)
    try:
        yield store
    finally:
        await store.close()


async def chunks_of(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def read_all(blobs: BlobStore, key: str) -> bytes:
    return b"".join([chunk async for chunk in await blobs.open(key)])


class Boom(Exception):
    pass


async def failing_after(data: bytes, limit: int) -> AsyncIterator[bytes]:
    """Yields ``limit`` bytes of ``data``, then fails as a client disconnecting would."""
    sent = 0
    async for chunk in chunks_of(data):
        if sent >= limit:
            raise Boom("client went away")
        sent += len(chunk)
        yield chunk


@pytest.mark.parametrize("size", [0, 1, 5 * MiB - 1, 5 * MiB, 12 * MiB + 7])
async def test_round_trip(blobs: BlobStore, blob_backend: BlobBackend, size: int) -> None:
    data = os.urandom(size)
    assert not await blobs.exists("roundtrip-key")
    assert await blobs.put("roundtrip-key", chunks_of(data)) == size
    assert await blobs.exists("roundtrip-key")
    assert await read_all(blobs, "roundtrip-key") == data
    assert await blob_backend.objects() == ["roundtrip-key"]
    assert await blob_backend.pending() == []


async def test_put_replaces_and_delete_is_idempotent(
    blobs: BlobStore, blob_backend: BlobBackend
) -> None:
    await blobs.put("replace-key", chunks_of(b"first version"))
    await blobs.put("replace-key", chunks_of(b"second"))
    assert await read_all(blobs, "replace-key") == b"second"
    await blobs.delete("replace-key")
    await blobs.delete("replace-key")
    assert not await blobs.exists("replace-key")
    assert await blob_backend.objects() == []


async def test_missing_blob_is_not_found_before_any_byte(blobs: BlobStore) -> None:
    with pytest.raises(NotFound):
        await blobs.open("never-stored")
    assert not await blobs.exists("never-stored")


@pytest.mark.parametrize("fail_at", [0, 100 * 1024, 7 * MiB])
async def test_failed_source_leaves_nothing(
    blobs: BlobStore, blob_backend: BlobBackend, fail_at: int
) -> None:
    """Whether the failure comes before the first byte, within the first part or after
    a multipart upload began, nothing of the blob remains."""
    with pytest.raises(Boom):
        await blobs.put("broken-upload", failing_after(os.urandom(12 * MiB), fail_at))
    assert not await blobs.exists("broken-upload")
    assert await blob_backend.objects() == []
    assert await blob_backend.pending() == []


async def test_failed_replacement_keeps_the_previous_blob(blobs: BlobStore) -> None:
    await blobs.put("keep-me-key", chunks_of(b"the original"))
    with pytest.raises(Boom):
        await blobs.put("keep-me-key", failing_after(os.urandom(6 * MiB), 5 * MiB + 1))
    assert await read_all(blobs, "keep-me-key") == b"the original"


async def test_cancelled_put_leaves_nothing(blobs: BlobStore, blob_backend: BlobBackend) -> None:
    started = asyncio.Event()
    never = asyncio.Event()

    async def stalls() -> AsyncIterator[bytes]:
        yield os.urandom(6 * MiB)  # enough for a first S3 part to be under way
        started.set()
        await never.wait()
        yield b"unreachable"

    task = asyncio.create_task(blobs.put("cancelled-key", stalls()))
    await started.wait()
    assert await blob_backend.pending() != []  # the write had begun
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await blob_backend.objects() == []
    assert await blob_backend.pending() == []


@pytest.mark.parametrize(
    "key", ["../escape-root", "a/b/c/d/e/f/g", "/etc/passwd", "short", "", "dot.dot.key", "é" * 10]
)
async def test_keys_are_server_ids_only(
    blobs: BlobStore, blob_backend: BlobBackend, key: str
) -> None:
    with pytest.raises(ValueError):
        await blobs.put(key, chunks_of(b"x"))
    with pytest.raises(ValueError):
        await blobs.open(key)
    with pytest.raises(ValueError):
        await blobs.delete(key)
    assert await blob_backend.objects() == []


def open_fds_on(path: str) -> int:
    fds = os.listdir("/proc/self/fd")
    count = 0
    for fd in fds:
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").endswith(path)
        except OSError:
            continue
    return count


async def test_abandoned_reads_release_their_file_or_connection(blobs: BlobStore) -> None:
    """Downloads the client gave up on: closed readers hold no file and no connection
    (S3: the pool has 10 connections, so leaking 15 would stall the last read)."""
    data = os.urandom(3 * MiB)
    await blobs.put("abandoned-read", chunks_of(data))
    async with asyncio.timeout(20):
        for _ in range(15):
            reader = await blobs.open("abandoned-read")
            first = await anext(reader)
            assert first and data.startswith(first)
            await reader.aclose()
        assert open_fds_on("abandoned-read") == 0
        assert await read_all(blobs, "abandoned-read") == data


async def test_presigned_urls(blobs: BlobStore, blob_backend: BlobBackend) -> None:
    await blobs.put("presigned-key", chunks_of(b"%PDF-1.7 ciphertext really"))
    url = await blobs.presigned_url("presigned-key", 60)
    if blob_backend.name == "local":
        assert url is None  # the server streams local files itself
        return
    assert url is not None
    async with httpx.AsyncClient() as http:
        fetched = await http.get(url)
        assert fetched.status_code == 200 and fetched.content == b"%PDF-1.7 ciphertext really"
    # Short-lived and signed (SigV4): the query carries the lifetime asked for.
    assert "X-Amz-Expires=60&" in url and "X-Amz-Signature=" in url
