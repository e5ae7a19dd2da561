from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from harness import ServerUnderTest, running_server, settings_for


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ServerUnderTest]:
    async with running_server(settings_for(tmp_path)) as srv:
        yield srv
