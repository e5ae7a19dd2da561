from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from blob_backends import BlobBackend, local_backend, s3_backend
from services_pg import PostgresServer, drop_database, fresh_database, start_postgres
from services_s3 import S3Server, start_s3

from harness import ServerUnderTest, running_server, settings_for
from services import RedisCluster, RedisServer, external_redis_cluster_url, external_redis_url


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ServerUnderTest]:
    async with running_server(settings_for(tmp_path)) as srv:
        yield srv


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """One redis-server for the session (or TEST_REDIS_URL)."""
    external = external_redis_url()
    if external:
        yield external
        return
    server = RedisServer().start()
    try:
        yield server.url
    finally:
        server.close()


@pytest.fixture(scope="session")
def redis_cluster_url() -> Iterator[str]:
    """One Redis Cluster (three masters, no replicas) for the session, or
    TEST_REDIS_CLUSTER_URL (``redis+cluster://host:port[,host:port...]``)."""
    external = external_redis_cluster_url()
    if external:
        yield external
        return
    cluster = RedisCluster().start()
    try:
        yield cluster.url
    finally:
        cluster.close()


@pytest.fixture
def own_redis_cluster() -> Iterator[RedisCluster]:
    """A Redis Cluster of the test's own, whose masters the test may stop and restart."""
    cluster = RedisCluster().start()
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server of the test's own, which the test may stop and restart."""
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL server for the session (or ``TEST_DATABASE_URL``'s)."""
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def postgres_database(postgres_server: PostgresServer) -> AsyncIterator[str]:
    """A fresh, empty database on the session's server, dropped after the test."""
    url = await fresh_database(postgres_server.url)
    try:
        yield url
    finally:
        await drop_database(postgres_server.url, url)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """One S3-compatible server for the session (moto over HTTP, or TEST_S3_ENDPOINT)."""
    server = start_s3()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["local", "s3"])
async def blob_backend(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[BlobBackend]:
    """An empty blob store of each adapter: a fresh directory, or a fresh bucket (parts
    of 5 MiB, S3's minimum, so that multipart uploads happen at test sizes)."""
    if request.param == "local":
        async with local_backend(tmp_path) as backend:
            yield backend
    else:
        server: S3Server = request.getfixturevalue("s3_server")
        async with s3_backend(server, part_size=5 * 1024 * 1024) as backend:
            yield backend


@pytest.fixture
async def blob_server(tmp_path: Path, blob_backend: BlobBackend) -> AsyncIterator[ServerUnderTest]:
    """A server whose attachments go to ``blob_backend`` (each adapter in turn)."""
    async with running_server(settings_for(tmp_path, blob_url=blob_backend.url)) as srv:
        yield srv
