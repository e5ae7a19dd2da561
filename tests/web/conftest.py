"""Fixtures of the web client tests: Debian's Chromium driven by Playwright.

The browser is never downloaded: Playwright launches ``/usr/bin/chromium`` (``make
test`` installs the ``chromium`` package when it is missing) and the client's npm
packages come from ``clients/web/node_modules`` (``npm ci`` in the Makefile), so the
tests need no network.

One browser and one server serve every test of this folder (session scope: starting
them is most of a test's cost); tests keep apart by making their own practitioners and
browser contexts (each context is a fresh profile: its own IndexedDB). The server is
wired to the tests' own OpenID provider as Pro Santé Connect, and its public URL is its
own address, so that the browser can follow every link it puts in e-mails. Each test
module runs in the session's event loop, where they live (``pytestmark`` below).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from oidc_provider import OidcProvider, running_provider
from playwright.async_api import Browser, async_playwright, expect
from verification_kit import CLIENT_ID, CLIENT_SECRET

from harness import ServerUnderTest, running_server, settings_for
from loadtest.server_process import bind_socket
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


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser(chromium: str) -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            yield browser
        finally:
            await browser.close()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def provider() -> AsyncIterator[OidcProvider]:
    """The tests' own Pro Santé Connect."""
    async with running_provider() as found:
        yield found


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def server(
    provider: OidcProvider, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ServerUnderTest]:
    sock = bind_socket()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = settings_for(
        tmp_path_factory.mktemp("web"),
        psc_issuer=provider.issuer,
        psc_client_id=CLIENT_ID,
        psc_client_secret=CLIENT_SECRET,
        public_url=url,
        # Every test signs practitioners up from 127.0.0.1: the per-address limit of a
        # node (100 an hour) would refuse them before the session ends.
        signups_per_hour=100_000,
    )
    async with running_server(settings, sock) as srv:
        provider.register(CLIENT_ID, CLIENT_SECRET, url + "/v1/verification/psc/callback")
        yield srv


VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}


@pytest.fixture(params=list(VIEWPORTS))
def viewport(request: pytest.FixtureRequest) -> dict[str, int]:
    """The issue's two sizes: a desktop (1280 by 800) and a phone (390 by 844)."""
    size: dict[str, int] = VIEWPORTS[request.param]
    return size
