"""An S3-compatible server for the tests, and a fresh bucket per test.

By default a moto server (``moto.server.ThreadedMotoServer``) runs in a thread of the
test process, listening over HTTP on 127.0.0.1 with a port the OS chose (port 0): the
S3 adapter talks to it with aioboto3 exactly as it would to AWS or MinIO. If
``TEST_S3_ENDPOINT`` is set (e.g. ``http://127.0.0.1:9000`` for a MinIO), that server
is used instead, with ``TEST_S3_ACCESS_KEY`` / ``TEST_S3_SECRET_KEY``.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

import aioboto3
from aiobotocore.config import AioConfig
from moto.server import ThreadedMotoServer

if TYPE_CHECKING:
    from types_aiobotocore_s3.client import S3Client

__all__ = ["S3Server", "bucket_client", "fresh_bucket", "start_s3"]


@dataclass
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str
    _moto: ThreadedMotoServer | None = None
    _session: aioboto3.Session | None = None

    def stop(self) -> None:
        if self._moto is not None:
            self._moto.stop()
            self._moto = None

    def url(self, bucket: str) -> str:
        """The blob URL of ``bucket`` on this server."""
        creds = f"{quote(self.access_key, safe='')}:{quote(self.secret_key, safe='')}"
        return f"s3://{creds}@{bucket}?endpoint={quote(self.endpoint, safe=':/')}"


def start_s3() -> S3Server:
    """Start a moto server (or use ``TEST_S3_ENDPOINT``)."""
    external = os.environ.get("TEST_S3_ENDPOINT")
    if external:
        return S3Server(
            external,
            os.environ.get("TEST_S3_ACCESS_KEY", "test"),
            os.environ.get("TEST_S3_SECRET_KEY", "test"),
        )
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    return S3Server(f"http://{host}:{port}", "test", "test", moto)


@asynccontextmanager
async def bucket_client(server: S3Server) -> AsyncIterator[S3Client]:
    """A client of the tests' own (one session for all: it caches the service model)."""
    if server._session is None:
        server._session = aioboto3.Session(
            aws_access_key_id=server.access_key,
            aws_secret_access_key=server.secret_key,
            region_name="us-east-1",
        )
    config = AioConfig(signature_version="s3v4", s3={"addressing_style": "path"})
    async with server._session.client("s3", endpoint_url=server.endpoint, config=config) as s3:
        yield s3


@asynccontextmanager
async def _client(server: S3Server, client: S3Client | None) -> AsyncIterator[S3Client]:
    if client is not None:
        yield client
        return
    async with bucket_client(server) as s3:
        yield s3


@asynccontextmanager
async def fresh_bucket(server: S3Server, client: S3Client | None = None) -> AsyncIterator[str]:
    """Create an empty, uniquely named bucket; empty and delete it afterwards (through
    ``client`` if given: a client costs a good part of a test's set-up)."""
    bucket = f"confrere-test-{uuid.uuid4().hex[:16]}"
    async with _client(server, client) as s3:
        await s3.create_bucket(Bucket=bucket)
    try:
        yield bucket
    finally:
        async with _client(server, client) as s3:
            uploads = await s3.list_multipart_uploads(Bucket=bucket)
            for upload in uploads.get("Uploads", []):
                await s3.abort_multipart_upload(
                    Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                )
            listed = await s3.list_objects_v2(Bucket=bucket)
            for obj in listed.get("Contents", []):
                await s3.delete_object(Bucket=bucket, Key=obj["Key"])
            await s3.delete_bucket(Bucket=bucket)
