"""The offline indicator and automatic resume: the connection drops (the node restarts
it with 1012) while the browser is offline; messages sent meanwhile by the peer, and
one typed meanwhile in the browser, all arrive exactly once after reconnection."""

from __future__ import annotations

import asyncio

import pytest
from browser_kit import log_in, open_client, send_text, start_direct
from playwright.async_api import Browser, expect

from harness import ServerUnderTest, practitioner
from protocol import CloseCode

pytestmark = pytest.mark.asyncio(loop_scope="session")  # the shared browser and server


async def test_reconnects_and_catches_up(server: ServerUnderTest, browser: Browser) -> None:
    anne = await practitioner(server.url, server.store)
    paul = await practitioner(server.url, server.store)
    ctx_a, page_a, errors_a = await open_client(browser, server.url)
    ctx_p, page_p, errors_p = await open_client(browser, server.url)
    await log_in(page_a, anne)
    await log_in(page_p, paul)
    await start_direct(page_a, paul.user_id)
    await send_text(page_a, "Premier message")
    await page_p.locator("[data-testid=room]").click()
    await expect(page_p.locator(".msg.theirs .text")).to_have_text("Premier message")

    # Anne's network goes down and the server drops her connection.
    await ctx_a.set_offline(True)
    status = page_a.locator("#connection")
    async with asyncio.timeout(30):
        # Chromium applies the offline emulation to new sockets a moment later: a
        # reconnection that slipped through before it is dropped again.
        while await status.get_attribute("data-state") != "offline":
            for conn in server.app.live.of_user(anne.user_id):
                conn.close(CloseCode.SERVICE_RESTART)
            await asyncio.sleep(0.05)
    await expect(status).to_contain_text("Hors ligne")

    await send_text(page_p, "Envoyé pendant la coupure 1")
    await send_text(page_p, "Envoyé pendant la coupure 2")
    await page_a.fill("#composer", "Écrit hors ligne")
    await page_a.click("#send")  # waits for the connection, then goes with its cid

    await ctx_a.set_offline(False)
    await expect(status).to_have_attribute("data-state", "online", timeout=15_000)
    theirs = page_a.locator(".msg.theirs .text")
    await expect(theirs).to_have_text(
        ["Envoyé pendant la coupure 1", "Envoyé pendant la coupure 2"]
    )
    await expect(page_p.locator(".msg.theirs .text")).to_have_text(
        ["Premier message", "Écrit hors ligne"]
    )
    assert errors_a == [] and errors_p == []
    await ctx_a.close()
    await ctx_p.close()
