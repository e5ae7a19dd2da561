"""The contract suite runs once per storage adapter: add an adapter's URL factory here.

A factory is an async context manager yielding a database URL that is empty for the
test (and cleaning up after it). PostgreSQL: one throwaway server per session, started
only if a postgres test runs (see ``services_pg``), and a fresh database per test.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest
from services_pg import PostgresServer, drop_database, fresh_database

from storage import Store, open_store

UrlFactory = Callable[[pytest.FixtureRequest, Path], AbstractAsyncContextManager[str]]


@contextlib.asynccontextmanager
async def _sqlite(request: pytest.FixtureRequest, tmp: Path) -> AsyncIterator[str]:
    yield f"sqlite:///{tmp / 'contract.db'}"


@contextlib.asynccontextmanager
async def _postgres(request: pytest.FixtureRequest, tmp: Path) -> AsyncIterator[str]:
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = await fresh_database(server.url)
    try:
        yield url
    finally:
        await drop_database(server.url, url)


ADAPTERS: dict[str, UrlFactory] = {
    "sqlite": _sqlite,
    "postgres": _postgres,
}


@pytest.fixture(params=sorted(ADAPTERS))
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    async with ADAPTERS[request.param](request, tmp_path) as url:
        yield url


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    opened = await open_store(store_url)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def reopen(store_url: str) -> Callable[[], object]:
    """Open the same database again (a restarted node)."""
    return lambda: open_store(store_url)
