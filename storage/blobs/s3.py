"""S3 adapter of :class:`storage.blobs.base.BlobStore` (aioboto3): AWS, MinIO, any
S3-compatible server.

URL: ``s3://[ACCESS_KEY:SECRET_KEY@]BUCKET[/PREFIX]?endpoint=URL&region=R&part_size=N``

- ``BUCKET`` must exist; objects are named ``PREFIX/KEY`` (or ``KEY`` without prefix).
- ``endpoint``: the server's base URL (MinIO, a test server); absent for AWS itself.
  With an endpoint, path-style addressing is used (``addressing=virtual`` to change).
- Credentials from the URL when given (percent-encoded), else boto's usual chain
  (``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``, profiles, instance roles).
- ``region``: default ``AWS_DEFAULT_REGION`` or ``us-east-1``.
- ``part_size``: bytes per multipart part, at least and by default 5 MiB (S3's minimum):
  an upload holds one part in memory, so larger parts cost memory per upload.

How it keeps the guarantees of :mod:`storage.blobs.base`:

- ``put`` buffers one part at most. A blob smaller than a part goes up in one
  ``PutObject`` (atomic by S3's own rules). A larger one is a multipart upload: parts
  are sent as they fill, and the object appears only at ``CompleteMultipartUpload``. On
  any failure or cancellation the upload is aborted (S3 discards the parts), so
  nothing partial remains. Only a process killed mid-upload can leave parts behind: give
  the bucket a lifecycle rule ``AbortIncompleteMultipartUpload`` (e.g. after 1 day).
- ``presigned_url`` signs a GET (SigV4) locally, without a request; its lifetime is the
  caller's ``ttl_s``.
- Request checksums are sent only where S3 requires them (``when_required``), for
  compatibility with S3-compatible servers that lag behind AWS's default CRC checks:
  every blob Confrère stores is authenticated ciphertext, checked when read.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
from collections.abc import AsyncGenerator, AsyncIterable, Awaitable
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Literal, TypeVar, cast
from urllib.parse import parse_qsl, unquote, urlsplit

import aioboto3
import aiohttp
from aiobotocore.config import AioConfig
from botocore.exceptions import BotoCoreError, ClientError

from ..errors import NotFound, Unavailable
from .base import check_key

if TYPE_CHECKING:
    from types_aiobotocore_s3.client import S3Client
    from types_aiobotocore_s3.type_defs import CompletedPartTypeDef

__all__ = ["S3BlobStore", "S3Options", "open_s3", "parse_s3_url"]

log = logging.getLogger("confrere.storage.blobs")
T = TypeVar("T")

MIN_PART = 5 * 1024 * 1024  # S3's minimum size of every part but the last
DEFAULT_PART = MIN_PART  # memory per upload in progress: one part
READ_UNIT = 256 * 1024
_MISSING = {"404", "NoSuchKey", "NotFound"}
_FAILURES: tuple[type[BaseException], ...] = (
    BotoCoreError,
    ClientError,
    aiohttp.ClientError,
    OSError,
)


@dataclass(frozen=True, slots=True)
class S3Options:
    bucket: str
    prefix: str = ""
    endpoint: str | None = None
    region: str = "us-east-1"
    part_size: int = DEFAULT_PART
    addressing: Literal["auto", "path", "virtual"] = "auto"
    access_key: str | None = None
    secret_key: str | None = None

    def __post_init__(self) -> None:
        if not self.bucket:
            raise ValueError("an s3:// URL names a bucket: s3://BUCKET[/PREFIX]")
        if self.part_size < MIN_PART:
            raise ValueError(f"part_size must be at least {MIN_PART} bytes (S3's minimum)")
        if self.addressing not in ("auto", "path", "virtual"):
            raise ValueError("addressing must be auto, path or virtual")

    def __repr__(self) -> str:  # never print the secret
        return f"S3Options(bucket={self.bucket!r}, prefix={self.prefix!r})"


def parse_s3_url(url: str) -> S3Options:
    """The options an ``s3://`` URL names (see the module docstring)."""
    parts = urlsplit(url)
    if parts.scheme != "s3":
        raise ValueError("not an s3:// URL")
    query = dict(parse_qsl(parts.query))
    unknown = set(query) - {"endpoint", "region", "part_size", "addressing"}
    if unknown:
        raise ValueError(f"unknown s3 URL option(s): {', '.join(sorted(unknown))}")
    endpoint = query.get("endpoint")
    addressing = query.get("addressing", "path" if endpoint else "auto")
    if addressing not in ("auto", "path", "virtual"):
        raise ValueError("addressing must be auto, path or virtual")
    return S3Options(
        bucket=parts.hostname or "",
        prefix=parts.path.strip("/"),
        endpoint=endpoint,
        region=query.get("region") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        part_size=int(query.get("part_size", DEFAULT_PART)),
        addressing=cast(Literal["auto", "path", "virtual"], addressing),
        access_key=unquote(parts.username) if parts.username else None,
        secret_key=unquote(parts.password) if parts.password else None,
    )


class _Part(io.RawIOBase):
    """One part's bytes, read from the chunks as they arrived: no copy into one
    buffer, and none in the transport either (the HTTP client reads the part in small
    pieces as the socket drains). Seekable, for the payload hash and for retries."""

    def __init__(self, chunks: list[bytes]) -> None:
        super().__init__()
        self._chunks = chunks
        self._size = sum(len(c) for c in chunks)
        self._pos = 0
        self._index = 0  # chunk holding ``_pos``
        self._offset = 0  # and where in it

    def __len__(self) -> int:
        return self._size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = left = max(0, min(base + offset, self._size))
        self._index = 0
        while self._index < len(self._chunks) and left >= len(self._chunks[self._index]):
            left -= len(self._chunks[self._index])
            self._index += 1
        self._offset = left
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        wanted = self._size - self._pos if size is None or size < 0 else size
        out = []
        while wanted > 0 and self._index < len(self._chunks):
            chunk = self._chunks[self._index]
            piece = chunk[self._offset : self._offset + wanted]
            out.append(piece)
            wanted -= len(piece)
            self._pos += len(piece)
            self._offset += len(piece)
            if self._offset == len(chunk):
                self._index, self._offset = self._index + 1, 0
        return b"".join(out)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class S3BlobStore:
    """Use :func:`open_s3` to construct; call :meth:`close` when done."""

    def __init__(self, options: S3Options) -> None:
        self.options = options
        self._exit = contextlib.AsyncExitStack()
        self._s3: S3Client | None = None

    def name(self, key: str) -> str:
        """The object name of the blob ``key`` in the bucket."""
        check_key(key)
        return f"{self.options.prefix}/{key}" if self.options.prefix else key

    @property
    def client(self) -> S3Client:
        if self._s3 is None:
            raise Unavailable("the blob store is closed")
        return self._s3

    async def _call(self, what: str, request: Awaitable[T]) -> T:
        """Await one S3 request; its failures become :class:`Unavailable`."""
        try:
            return await request
        except _FAILURES as exc:
            log.error("s3 %s failed: %s: %s", what, type(exc).__name__, exc)
            raise Unavailable(f"blob store: {what} failed") from exc

    async def open_store(self) -> None:
        o = self.options
        session = aioboto3.Session(
            aws_access_key_id=o.access_key,
            aws_secret_access_key=o.secret_key,
            region_name=o.region,
        )
        config = AioConfig(
            signature_version="s3v4",
            s3={"addressing_style": o.addressing},
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=10,
            read_timeout=60,
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self._s3 = await self._exit.enter_async_context(
            session.client("s3", endpoint_url=o.endpoint, config=config)
        )

    async def close(self) -> None:
        self._s3 = None
        await self._exit.aclose()

    async def ping(self) -> None:
        await self._call("HeadBucket", self.client.head_bucket(Bucket=self.options.bucket))

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        name, bucket, part_size = self.name(key), self.options.bucket, self.options.part_size
        s3 = self.client
        upload_id: str | None = None
        parts: list[CompletedPartTypeDef] = []
        buffer: list[bytes] = []
        buffered = size = 0

        async def send_part() -> None:
            nonlocal buffer, buffered, upload_id
            if upload_id is None:
                created = await self._call(
                    "CreateMultipartUpload", s3.create_multipart_upload(Bucket=bucket, Key=name)
                )
                upload_id = created["UploadId"]
            number = len(parts) + 1
            body = cast(IO[bytes], _Part(buffer))  # at most one part held at a time
            buffer, buffered = [], 0
            sent = await self._call(
                "UploadPart",
                s3.upload_part(
                    Bucket=bucket, Key=name, UploadId=upload_id, PartNumber=number, Body=body
                ),
            )
            parts.append({"ETag": sent["ETag"], "PartNumber": number})

        try:
            async for chunk in chunks:
                buffer.append(chunk)
                buffered += len(chunk)
                size += len(chunk)
                if buffered >= part_size:
                    await send_part()
            if upload_id is None:
                body = cast(IO[bytes], _Part(buffer))
                await self._call("PutObject", s3.put_object(Bucket=bucket, Key=name, Body=body))
                return size
            if buffer:
                await send_part()
            await self._call(
                "CompleteMultipartUpload",
                s3.complete_multipart_upload(
                    Bucket=bucket, Key=name, UploadId=upload_id, MultipartUpload={"Parts": parts}
                ),
            )
            return size
        except BaseException:
            if upload_id is not None:
                await self._abort(name, upload_id)
            raise

    async def _abort(self, name: str, upload_id: str) -> None:
        """Abort a multipart upload, even while this task is being cancelled (the abort
        then finishes in the background)."""
        request = self.client.abort_multipart_upload(
            Bucket=self.options.bucket, Key=name, UploadId=upload_id
        )
        try:
            await asyncio.shield(request)
        except asyncio.CancelledError:
            pass
        except _FAILURES as exc:
            log.error("s3 AbortMultipartUpload of %s failed: %s", name, exc)

    async def open(self, key: str) -> AsyncGenerator[bytes, None]:
        name = self.name(key)
        try:
            response = await self.client.get_object(Bucket=self.options.bucket, Key=name)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING:
                raise NotFound(f"no blob {key}") from None
            raise Unavailable("blob store: GetObject failed") from exc
        except _FAILURES as exc:
            raise Unavailable("blob store: GetObject failed") from exc
        return self._read(response["Body"])

    @staticmethod
    async def _read(body: Any) -> AsyncGenerator[bytes, None]:
        try:
            chunks = body.iter_chunks(READ_UNIT)
            while True:
                try:
                    chunk = await anext(chunks, b"")
                except _FAILURES as exc:
                    raise Unavailable("blob store: reading an object failed") from exc
                if not chunk:
                    return
                yield chunk
        finally:
            body.close()

    async def delete(self, key: str) -> None:
        request = self.client.delete_object(Bucket=self.options.bucket, Key=self.name(key))
        await self._call("DeleteObject", request)

    async def exists(self, key: str) -> bool:
        try:
            await self.client.head_object(Bucket=self.options.bucket, Key=self.name(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING:
                return False
            raise Unavailable("blob store: HeadObject failed") from exc
        except _FAILURES as exc:
            raise Unavailable("blob store: HeadObject failed") from exc
        return True

    async def presigned_url(self, key: str, ttl_s: int) -> str | None:
        return await self._call(
            "presign",
            self.client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.options.bucket, "Key": self.name(key)},
                ExpiresIn=ttl_s,
            ),
        )


async def open_s3(url: str) -> S3BlobStore:
    """Connect to the bucket an ``s3://`` URL names (see the module docstring)."""
    store = S3BlobStore(parse_s3_url(url))
    await store.open_store()
    return store
