"""The blob adapters the tests run against, with a look inside each one.

Each test gets an empty store: a fresh directory, or a fresh bucket on the session's S3
server (see ``services_s3``). ``objects`` lists the finished blobs and ``pending`` the
writes in progress or left behind (temporary files, multipart uploads): after any
failed upload both must show nothing of it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from services_s3 import S3Server, bucket_client, fresh_bucket

if TYPE_CHECKING:
    from types_aiobotocore_s3.client import S3Client

__all__ = ["BlobBackend", "local_backend", "s3_backend"]


@dataclass
class BlobBackend:
    name: str
    url: str
    root: Path | None = None  # local
    s3: S3Server | None = None
    bucket: str | None = None
    client: S3Client | None = None  # s3: the test's one client, for the look inside

    async def objects(self) -> list[str]:
        """Keys of the finished blobs."""
        if self.root is not None:
            root = self.root

            def scan() -> list[str]:
                return sorted(
                    p.name
                    for p in root.rglob("*")
                    if p.is_file() and ".incoming" not in p.relative_to(root).parts
                )

            return await asyncio.to_thread(scan)
        assert self.client is not None and self.bucket is not None
        listed = await self.client.list_objects_v2(Bucket=self.bucket)
        return sorted(o["Key"] for o in listed.get("Contents", []))

    async def raw(self, key: str) -> bytes:
        """The bytes of a blob as stored (to see what is at rest)."""
        if self.root is not None:
            return await asyncio.to_thread((self.root / key[:2] / key).read_bytes)
        assert self.client is not None and self.bucket is not None
        got = await self.client.get_object(Bucket=self.bucket, Key=key)
        async with got["Body"] as body:
            return await body.read()

    async def pending(self) -> list[str]:
        """Partial writes: temporary files, or multipart uploads not completed."""
        if self.root is not None:
            incoming = self.root / ".incoming"
            return sorted(p.name for p in incoming.iterdir()) if incoming.exists() else []
        assert self.client is not None and self.bucket is not None
        uploads = await self.client.list_multipart_uploads(Bucket=self.bucket)
        return sorted(u["Key"] for u in uploads.get("Uploads", []))


@asynccontextmanager
async def local_backend(tmp: Path) -> AsyncIterator[BlobBackend]:
    root = tmp / "blobs"
    yield BlobBackend("local", f"file://{root}", root=root)


@asynccontextmanager
async def s3_backend(server: S3Server, part_size: int | None = None) -> AsyncIterator[BlobBackend]:
    async with bucket_client(server) as client, fresh_bucket(server, client) as bucket:
        url = server.url(bucket)
        if part_size is not None:
            url += f"&part_size={part_size}"
        yield BlobBackend("s3", url, s3=server, bucket=bucket, client=client)
