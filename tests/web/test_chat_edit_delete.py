"""Edit and delete for everyone in the web client, between two practitioners in
Chromium (at both sizes): the author edits from the message's menu (the other side
sees the new text marked "modifié"), deletes with a confirmation (everyone sees
"Message supprimé"), and a device that was offline meanwhile shows both once it is
back."""

from __future__ import annotations

import asyncio

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
)
from playwright.async_api import Browser, Page, expect

from harness import ServerUnderTest, practitioner
from protocol import CloseCode

pytestmark = pytest.mark.asyncio(loop_scope="session")  # the shared browser and server


async def device_of(page: Page) -> str:
    device: str = await page.evaluate(
        """async () => (await (await import("/app/store.js")).get("session")).deviceId"""
    )
    return device


async def message_menu(page: Page, text: str) -> None:
    """Open the actions of one's own message that says ``text``."""
    mine = page.locator(".msg.mine", has=page.locator(".text", has_text=text))
    await mine.locator(".msg-menu-toggle").click()
    await expect(mine.locator(".msg-menu")).to_be_visible()


async def test_edit_and_delete_live_and_after_a_resync(
    server: ServerUnderTest, browser: Browser, viewport: dict[str, int]
) -> None:
    anne = await practitioner(server.url, server.store)
    paul = await practitioner(server.url, server.store)
    ctx_a, page_a, errors_a = await open_client(browser, server.url, viewport)
    ctx_p, page_p, errors_p = await open_client(browser, server.url, viewport)
    ctx_q, page_q, errors_q = await open_client(browser, server.url, DESKTOP)  # Paul's 2nd
    await log_in(page_a, anne)
    await log_in(page_p, paul)
    await log_in_approved(page_q, paul, page_p)  # Paul's second browser, approved
    await start_direct(page_a, paul.user_id)
    await send_text(page_a, "RDV à 9 h pour Mme D.")
    for page in (page_p, page_q):
        await open_room(page)
        await expect(page.locator(".msg.theirs .text")).to_have_text("RDV à 9 h pour Mme D.")
    # Only its author may change a message in a direct room: Paul may only answer it.
    await page_p.locator(".msg.theirs .msg-menu-toggle").click()
    await expect(page_p.locator(".msg-menu .reply-message")).to_be_visible()
    await expect(
        page_p.locator(".msg-menu .edit-message, .msg-menu .delete-message")
    ).to_have_count(0)
    await page_p.locator(".msg.theirs .msg-menu-toggle").click()
    await expect(page_p.locator(".msg-menu")).to_have_count(0)

    # Paul's second device goes offline (and the server drops its connection).
    tablet = await device_of(page_q)
    await ctx_q.set_offline(True)
    status = page_q.locator("#connection")
    async with asyncio.timeout(30):
        while await status.get_attribute("data-state") != "offline":
            for conn in server.app.live.of_user(paul.user_id):
                if conn.device_id == tablet:
                    conn.close(CloseCode.SERVICE_RESTART)
            await asyncio.sleep(0.05)

    # Anne edits: the composer takes the text; Escape would cancel.
    await message_menu(page_a, "RDV à 9 h")
    await page_a.locator(".msg-menu .edit-message").click()
    await expect(page_a.locator("#composer-context")).to_contain_text("Modification du message")
    await expect(page_a.locator("#composer")).to_have_value("RDV à 9 h pour Mme D.")
    await expect(page_a.locator("#send")).to_have_text("Enregistrer")
    await page_a.fill("#composer", "RDV à 10 h pour Mme D.")
    await page_a.click("#send")
    await expect(page_a.locator("#composer-context")).to_be_hidden()
    await expect(page_a.locator("#send")).to_have_text("Envoyer")
    for page, side in ((page_a, "mine"), (page_p, "theirs")):
        bubble = page.locator(f".msg.{side}")
        await expect(bubble.locator(".text")).to_have_text("RDV à 10 h pour Mme D.")
        await expect(bubble.locator("[data-testid=edited]")).to_have_text(" · modifié")
        await expect(page.locator("[data-testid=message]")).to_have_count(1)  # no new bubble

    # Anne sends something, then deletes it for everyone (after confirming).
    await send_text(page_a, "Dossier de Mme D. : FA paroxystique")
    await expect(page_p.locator(".msg.theirs .text").last).to_have_text(
        "Dossier de Mme D. : FA paroxystique"
    )
    await message_menu(page_a, "FA paroxystique")
    await page_a.locator(".msg-menu .delete-message").click()
    await expect(page_a.locator("dialog")).to_contain_text("supprimé pour tous les participants")
    await page_a.click("dialog #confirm")
    for page in (page_a, page_p):
        await expect(page.locator(".msg.deleted .deleted-note")).to_have_text("Message supprimé")
        await expect(page.locator(".msg .text", has_text="paroxystique")).to_have_count(0)
    await screenshot(page_a, "edit-delete", clear_notices=True)
    room_id = await page_a.locator("[data-testid=room]").get_attribute("data-room")
    stored = [i for i in await server.store.timeline(room_id or "", 0, 100) if i.kind == "msg"]
    assert [(i.edits, i.body is None) for i in stored] == [
        (None, False),
        (2, False),
        (None, True),
    ]

    # The tablet comes back: it catches up with the edit and the deletion.
    await ctx_q.set_offline(False)
    await expect(status).to_have_attribute("data-state", "online", timeout=15_000)
    await expect(page_q.locator(".msg.theirs .text").first).to_have_text("RDV à 10 h pour Mme D.")
    await expect(page_q.locator(".msg.theirs [data-testid=edited]")).to_have_count(1)
    await expect(page_q.locator(".msg.deleted .deleted-note")).to_have_text("Message supprimé")
    await expect(page_q.locator(".msg .text", has_text="paroxystique")).to_have_count(0)

    # After a reload (history read again from seq 1) the tombstone stays a tombstone.
    await page_p.reload()
    await expect(page_p.locator("#connection")).to_have_attribute("data-state", "online")
    await open_room(page_p)
    await expect(page_p.locator(".msg.theirs .text").first).to_have_text("RDV à 10 h pour Mme D.")
    await expect(page_p.locator(".msg.deleted")).to_have_count(1)
    assert errors_a == [] and errors_p == [] and errors_q == []
    for ctx in (ctx_a, ctx_p, ctx_q):
        await ctx.close()
