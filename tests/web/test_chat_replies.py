"""Replies and @mentions in the web client, between two practitioners in Chromium (at
both sizes): "Répondre" quotes the message above the composer, "@" suggests the room's
members (accents ignored), the reply shows its quote and the mention highlighted (more
strongly for the one mentioned), and the quote follows the original when it is edited
and when it is deleted."""

from __future__ import annotations

import pytest
from browser_kit import (
    log_in,
    named_practitioner,
    open_client,
    open_room,
    screenshot,
    send_text,
    start_direct,
)
from playwright.async_api import Browser, expect

from harness import ServerUnderTest

pytestmark = pytest.mark.asyncio(loop_scope="session")  # the shared browser and server


async def test_reply_with_a_mention(
    server: ServerUnderTest, browser: Browser, viewport: dict[str, int]
) -> None:
    anne = await named_practitioner(
        server, "Anne", "Éluard", "Cardiologie et maladies vasculaires", "Lyon"
    )
    paul = await named_practitioner(server, "Paul", "Durand", "Médecine générale", "Lyon")
    ctx_a, page_a, errors_a = await open_client(browser, server.url, viewport)
    ctx_p, page_p, errors_p = await open_client(browser, server.url, viewport)
    await log_in(page_a, anne)
    await log_in(page_p, paul)
    await start_direct(page_a, paul.user_id)
    await send_text(page_a, "Pouvez-vous voir Mme D. jeudi ?")
    await open_room(page_p)
    theirs = page_p.locator(".msg.theirs")
    await expect(theirs.locator(".text")).to_have_text("Pouvez-vous voir Mme D. jeudi ?")

    # Paul answers it: the composer says which message, "@elu" finds Anne Éluard.
    await theirs.locator(".msg-menu-toggle").click()
    await page_p.locator(".msg-menu .reply-message").click()
    context = page_p.locator("#composer-context")
    await expect(context).to_contain_text("Réponse à")
    await expect(context).to_contain_text("Pouvez-vous voir Mme D. jeudi ?")
    await page_p.locator("#composer").press_sequentially("@elu")
    option = page_p.locator("#mention-list .mention-option")
    await expect(option).to_have_count(1)
    await expect(option).to_contain_text("Anne Éluard")
    await page_p.locator("#composer").press("Enter")  # picks the suggestion
    await expect(page_p.locator("#mention-list")).to_be_hidden()
    await page_p.locator("#composer").press_sequentially("oui, à 14 h.")
    value = await page_p.locator("#composer").input_value()
    assert value.startswith("@") and "Anne Éluard oui, à 14 h." in value
    await page_p.locator("#composer").press("Enter")
    await expect(context).to_be_hidden()

    # Both sides: the quote, and the mention (Anne's own highlighted as hers).
    for page, side, me in ((page_p, "mine", False), (page_a, "theirs", True)):
        reply = page.locator(f".msg.{side}", has=page.locator("[data-testid=quote]"))
        await expect(reply.locator("[data-testid=quote] .quote-text")).to_have_text(
            "Pouvez-vous voir Mme D. jeudi ?"
        )
        mention = reply.locator("[data-testid=mention]")
        await expect(mention).to_contain_text("Anne Éluard")
        await expect(mention).to_have_class("mention me" if me else "mention")
    await screenshot(page_a, "reply-mention", clear_notices=True)

    # The quote follows its original: edited, then deleted.
    mine = page_a.locator(".msg.mine", has_text="Pouvez-vous")
    await mine.locator(".msg-menu-toggle").click()
    await page_a.locator(".msg-menu .edit-message").click()
    await page_a.fill("#composer", "Pouvez-vous voir Mme D. vendredi ?")
    await page_a.click("#send")
    quote_p = page_p.locator("[data-testid=quote] .quote-text")
    await expect(quote_p).to_have_text("Pouvez-vous voir Mme D. vendredi ?")
    await mine.locator(".msg-menu-toggle").click()
    await page_a.locator(".msg-menu .delete-message").click()
    await page_a.click("dialog #confirm")
    await expect(quote_p).to_have_text("Message supprimé")
    await expect(page_a.locator("[data-testid=quote] .quote-text")).to_have_text("Message supprimé")
    assert errors_a == [] and errors_p == []
    await ctx_a.close()
    await ctx_p.close()
