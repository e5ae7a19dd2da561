"""The contract suite runs once per storage adapter: add an adapter's URL factory here."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from storage import Store, open_store

ADAPTERS: dict[str, Callable[[Path], str]] = {
    "sqlite": lambda tmp: f"sqlite:///{tmp / 'contract.db'}",
}


@pytest.fixture(params=sorted(ADAPTERS))
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return ADAPTERS[request.param](tmp_path)


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
