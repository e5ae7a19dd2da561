"""Fixtures of the web client tests: Debian's Chromium driven by Playwright.

The browser is never downloaded: Playwright launches ``/usr/bin/chromium`` (``make
test`` installs the ``chromium`` package when it is missing) and the client's npm
packages come from ``clients/web/node_modules`` (``npm ci`` in the Makefile), so the
tests need no network.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright, expect

from server.routes.web import WEB_ROOT

CHROMIUM = os.environ.get("CONFRERE_CHROMIUM", "/usr/bin/chromium")
# Assertions poll the page until they hold; a loaded two-core CI machine needs more
# than Playwright's default 5 s now and then.
expect.set_options(timeout=15_000)


@pytest.fixture(scope="session")
def chromium() -> str:
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: `make services` installs Debian's chromium")
    if not (WEB_ROOT / "node_modules" / ".package-lock.json").is_file():
        pytest.fail("clients/web/node_modules is missing: run `make web` (npm ci)")
    return CHROMIUM


@pytest.fixture
async def browser(chromium: str) -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            yield browser
        finally:
            await browser.close()
