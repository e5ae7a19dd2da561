"""A practitioner's own settings of a conversation in the web client (SPEC.md §4.21),
in Chromium at both sizes, with a second device of the same account open: notifications
("Mentions uniquement"), pinned, archived and "Marquer comme non lu" set on one device
show on the other at once; opening the conversation clears the mark everywhere; and
messages that arrived meanwhile sit under a "Nouveaux messages" line."""

from __future__ import annotations

import pytest
from browser_kit import (
    DESKTOP,
    log_in,
    log_in_approved,
    open_client,
    open_room,
    screenshot,
    send_text,
    start_direct,
    to_list,
)
from playwright.async_api import Browser, expect

from harness import ServerUnderTest, practitioner

pytestmark = pytest.mark.asyncio(loop_scope="session")  # the shared browser and server


async def test_settings_follow_the_account_across_devices(
    server: ServerUnderTest, browser: Browser, viewport: dict[str, int]
) -> None:
    anne = await practitioner(server.url, server.store)
    paul = await practitioner(server.url, server.store)
    ctx_a, page_a, errors_a = await open_client(browser, server.url, viewport)
    ctx_b, page_b, errors_b = await open_client(browser, server.url, DESKTOP)  # Anne's 2nd
    ctx_p, page_p, errors_p = await open_client(browser, server.url, DESKTOP)
    for page, who in ((page_a, anne), (page_p, paul)):
        await log_in(page, who)
    await log_in_approved(page_b, anne, page_a)  # her second browser, approved
    await start_direct(page_p, anne.user_id)
    await send_text(page_p, "Bonjour Anne")
    line_b = page_b.locator("[data-testid=room]")
    await expect(line_b).to_have_count(1)
    # Her second device reads it, then leaves the conversation for the bare list.
    await open_room(page_b)
    await expect(page_b.locator(".msg.theirs .text")).to_have_text("Bonjour Anne")
    await page_b.click("nav a[href='/conversations']")
    await expect(page_b.locator("#composer")).to_have_count(0)
    await expect(line_b.locator("[data-testid=unread]")).to_have_count(0)

    # On her first device Anne mutes it (mentions only) and pins it.
    await open_room(page_a)
    await page_a.click("#room-info")
    await page_a.select_option("#notify-setting", "mentions")
    await expect(line_b.locator("[data-testid=muted]")).to_have_text("sourdine")
    await page_a.click("#pin-room")
    await expect(page_a.locator("#pin-room")).to_have_text("Désépingler")
    await expect(line_b.locator("[data-testid=pinned]")).to_be_visible()
    await screenshot(page_a, "room-preferences", clear_notices=True)

    # Archived: folded away on the other device, behind its own line.
    await page_a.click("#archive-room")
    await expect(line_b).to_have_count(0)
    await page_b.click("#archived-toggle")
    await expect(line_b.locator("[data-testid=archived]")).to_be_visible()
    await page_a.click("#archive-room")  # and back
    await expect(page_a.locator("#archive-room")).to_have_text("Archiver")
    await expect(line_b.locator("[data-testid=archived]")).to_have_count(0)
    await expect(line_b).to_have_count(1)

    # Marked unread: back to the list; the other device shows the mark too.
    await page_a.click("#mark-unread")
    await expect(page_a.locator("dialog")).to_have_count(0)
    await to_list(page_a)
    for page in (page_a, page_b):
        mark = page.locator("[data-testid=room] [data-testid=marked-unread]")
        await expect(mark).to_be_visible()
    await expect(page_b).to_have_title("(1) Confrère")

    # Paul writes twice meanwhile; Anne opens it on her second device: the new messages
    # sit under the line, and the mark is gone on both.
    await send_text(page_p, "Pouvez-vous voir Mme D. ?")
    await send_text(page_p, "C'est urgent.")
    await expect(line_b.locator("[data-testid=unread]")).to_have_text("2")
    await open_room(page_b)
    marker = page_b.locator("[data-testid=unread-marker]")
    await expect(marker).to_have_text("Nouveaux messages")
    after = page_b.locator("[data-testid=unread-marker] + [data-testid=message] .text")
    await expect(after).to_have_text("Pouvez-vous voir Mme D. ?")
    await expect(page_a.locator("[data-testid=room] [data-testid=marked-unread]")).to_have_count(0)
    # The settings are the server's: a reload keeps them.
    await page_a.reload()
    await expect(page_a.locator("#connection")).to_have_attribute("data-state", "online")
    line_a = page_a.locator("[data-testid=room]")
    await expect(line_a.locator("[data-testid=pinned]")).to_be_visible()
    await expect(line_a.locator("[data-testid=muted]")).to_have_text("sourdine")
    assert errors_a == [] and errors_b == [] and errors_p == []
    for ctx in (ctx_a, ctx_b, ctx_p):
        await ctx.close()
