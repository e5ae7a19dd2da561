"""The browser's crypto (clients/web/app/crypto.js, in real Chromium) against the
protocol test vectors: the same bytes as protocol/crypto, both ways."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser

from harness import ServerUnderTest
from protocol.vectors import NAMES, load

pytestmark = pytest.mark.asyncio(loop_scope="session")  # the shared browser and server

# tests/protocol/test_attachment_crypto.py's vector (SPEC.md §11.6): decrypts to PLAIN.
ATTACHMENT = {
    "key": bytes(range(32)).hex(),
    "vector": "0182c690c2d9fd6023a293124bb7a8cc465a3d580fef4293bd7d75b19cbe5ab47183429b6c6caa93"
    "edbc811b542aeed47df6854b8b79499d607c0da5bf81823544c4630af26c4694",
    "plain": b"%PDF-1.7 Confr\xc3\xa8re test vector".hex(),
}
CHECK = (Path(__file__).parent / "vectors_check.js").read_text("utf-8")


async def test_browser_passes_the_protocol_vectors(
    server: ServerUnderTest, browser: Browser
) -> None:
    page = await browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(server.url + "/")
    vectors: dict[str, Any] = {name: load(name) for name in NAMES}
    vectors["attachment"] = ATTACHMENT
    failures = await page.evaluate(CHECK, vectors)
    assert failures == []
    assert errors == []
