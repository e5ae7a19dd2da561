from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from services_pg import PostgresServer, drop_database, fresh_database, start_postgres

from harness import ServerUnderTest, running_server, settings_for
from services import RedisServer, external_redis_url


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
