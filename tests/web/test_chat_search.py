"""Search in one's messages in the web client, between two practitioners in Chromium (at
both sizes): a word typed without accents ("reunion") finds "Réunion" (case-insensitive,
word prefixes), the result names the conversation, the sender, the date and shows an
excerpt; opening it opens the conversation on that message, highlighted. An edit
replaces the indexed text, a deletion for everyone removes it, and the index kept in
IndexedDB is ciphertext under a key the page cannot read out."""

from __future__ import annotations

import pytest
from browser_kit import (
    anne_and_paul,
    open_room,
    screenshot,
    send_text,
    start_direct,
    to_list,
)
from playwright.async_api import Browser, Page, expect

from harness import ServerUnderTest

pytestmark = pytest.mark.asyncio(loop_scope="session")  # the shared browser and server

FOUND = "Réunion de concertation jeudi à 14 h pour le dossier de Mme D."


async def search(page: Page, query: str) -> None:
    await to_list(page)
    await page.fill("#message-search", query)


async def index_at_rest(page: Page) -> dict[str, object]:
    """What this browser's search index holds in IndexedDB: its key's flags and the
    stored entries as bytes."""
    found: dict[str, object] = await page.evaluate(
        """async () => {
            const store = await import("/app/store.js");
            const device = (await store.get("session")).deviceId;
            const db = await new Promise((ok, ko) => {
                const r = indexedDB.open("confrere-search:" + device);
                r.onsuccess = () => ok(r.result);
                r.onerror = () => ko(r.error);
            });
            const all = (name, how) => new Promise((ok, ko) => {
                const r = db.transaction(name).objectStore(name)[how]();
                r.onsuccess = () => ok(r.result);
                r.onerror = () => ko(r.error);
            });
            const [key] = await all("meta", "getAll");
            const entries = await all("entries", "getAll");
            db.close();
            return {
                extractable: key.extractable,
                algorithm: key.algorithm.name,
                entries: entries.map((e) => new TextDecoder("latin1").decode(e.data)),
            };
        }"""
    )
    return found


async def test_search_finds_an_accented_word_typed_without_accents(
    server: ServerUnderTest, browser: Browser, viewport: dict[str, int]
) -> None:
    anne, paul = await anne_and_paul(server, browser, viewport)
    page_a, page_p = anne.page, paul.page
    await start_direct(page_a, paul.account.user_id)
    await send_text(page_a, FOUND)
    for n in range(12):  # enough to scroll the message out of sight
        await send_text(page_a, f"Autre sujet n° {n}")
    await open_room(page_p)
    await expect(page_p.locator(".msg.theirs")).to_have_count(13)

    # "reunion": accents and case ignored; "REUN conc": word prefixes, every word.
    hit = page_p.locator("[data-testid=search-hit]")
    for query in ("reunion", "REUN conc"):
        await search(page_p, query)
        await expect(hit).to_have_count(1)
    await expect(hit.locator(".room-name")).to_contain_text("Anne Éluard")
    await expect(hit.locator(".hit-sender")).to_contain_text("Anne Éluard")
    await expect(hit.locator(".room-time")).not_to_be_empty()
    await expect(hit.locator(".room-preview mark")).to_have_text("Réunion")
    await expect(hit.locator(".room-preview")).to_contain_text("concertation jeudi")
    await search(page_p, "reunions")
    await expect(page_p.locator("#search-empty")).to_have_text("Aucun message ne correspond.")

    # Opening a result opens its conversation on the message, highlighted.
    await search(page_p, "reunion")
    await screenshot(page_p, "message-search", clear_notices=True)
    await hit.click()
    target = page_p.locator(".msg.highlight")
    await expect(target.locator(".text")).to_have_text(FOUND)
    await expect(target).to_be_in_viewport()

    # Anne edits it: the new text is found, the old one no longer.
    mine = page_a.locator(".msg.mine", has=page_a.locator(".text", has_text="Réunion"))
    await mine.locator(".msg-menu-toggle").click()
    await page_a.locator(".msg-menu .edit-message").click()
    await page_a.fill("#composer", "Réunion annulée, reportée à lundi")
    await page_a.click("#send")
    await expect(page_p.locator(".msg.theirs [data-testid=edited]")).to_have_count(1)
    await search(page_p, "annulee")
    await expect(hit).to_have_count(1)
    await expect(hit.locator(".room-preview mark")).to_have_text("annulée")
    await search(page_p, "concertation")
    await expect(page_p.locator("#search-empty")).to_be_visible()

    # At rest, the index is ciphertext under a key the page cannot export.
    stored = await index_at_rest(page_p)
    assert stored["extractable"] is False and stored["algorithm"] == "AES-GCM"
    entries = stored["entries"]
    assert isinstance(entries, list) and len(entries) == 13
    assert not any("annul" in e or "sujet" in e for e in entries)

    # Anne deletes it for everyone: gone from Paul's results (and from his index).
    await mine.locator(".msg-menu-toggle").click()
    await page_a.locator(".msg-menu .delete-message").click()
    await page_a.click("dialog #confirm")
    await search(page_p, "reunion")
    await expect(page_p.locator("#search-empty")).to_be_visible()
    entries = (await index_at_rest(page_p))["entries"]
    assert isinstance(entries, list) and len(entries) == 12

    # The index survives a reload (Paul's own messages are found too).
    await page_p.reload()
    await expect(page_p.locator("#connection")).to_have_attribute("data-state", "online")
    await search(page_p, "sujet 11")
    await expect(hit).to_have_count(1)
    await expect(hit.locator(".room-preview")).to_contain_text("Autre sujet n° 11")
    assert anne.errors == [] and paul.errors == []
    await anne.context.close()
    await paul.context.close()
