"""Browser notifications while the tab is in the background, between two practitioners
in Chromium (at both sizes): permission is asked from a visible button (never on load);
a message arriving while the page is hidden shows a content-free notification ("Nouveau
message de …", never the text), none while the page is shown; each conversation's
setting decides: "Mentions uniquement" lets only a mention through, "Aucune" nothing."""

from __future__ import annotations

import pytest
from browser_kit import (
    anne_and_paul,
    eventually,
    open_room,
    screenshot,
    send_text,
    start_direct,
)
from playwright.async_api import Browser, Page, expect

from harness import ServerUnderTest

pytestmark = pytest.mark.asyncio(loop_scope="session")  # the shared browser and server

# Every notification the page creates is recorded (and still shown).
RECORD = """() => {
    const Real = window.Notification;
    window.shown = [];
    window.made = [];
    window.Notification = class extends Real {
        constructor(title, options) {
            super(title, options);
            window.shown.push({ title, body: options.body, tag: options.tag });
            window.made.push(this);
        }
    };
}"""

# The tab goes to the background (or comes back), as the browser tells a page.
HIDDEN = """(hidden) => {
    const state = hidden ? "hidden" : "visible";
    Object.defineProperty(document, "visibilityState", { configurable: true, get: () => state });
    Object.defineProperty(document, "hidden", { configurable: true, get: () => hidden });
    document.dispatchEvent(new Event("visibilitychange"));
}"""


async def shown(page: Page) -> list[dict[str, str]]:
    result: list[dict[str, str]] = await page.evaluate("window.shown")
    return result


async def received(page: Page, text: str) -> None:
    await expect(page.locator(".msg.theirs .text").last).to_contain_text(text)


async def set_notify(page: Page, value: str) -> None:
    await page.evaluate(HIDDEN, False)
    await page.click("#room-info")
    await page.select_option("#notify-setting", value)
    await expect(page.locator("[data-testid=room] [data-testid=muted]")).to_have_count(1)
    await page.locator("#room-details .close").click()
    await page.evaluate(HIDDEN, True)


async def mention(page: Page, start: str, rest: str) -> None:
    await page.locator("#composer").press_sequentially(f"@{start}")
    await page.locator("#mention-list .mention-option").first.click()
    await page.locator("#composer").press_sequentially(rest)
    await page.locator("#composer").press("Enter")


async def test_background_notifications_follow_the_room_setting(
    server: ServerUnderTest, browser: Browser, viewport: dict[str, int]
) -> None:
    anne, paul = await anne_and_paul(server, browser, viewport)
    page_a, page_p, ctx_p = anne.page, paul.page, paul.context

    # Not asked on load: a button asks, and goes once allowed.
    assert await page_p.evaluate("Notification.permission") == "default"
    button = page_p.locator("#enable-notifications")
    await expect(button).to_be_visible()
    await screenshot(page_p, "notifications-button", clear_notices=True)
    # "Plus tard" on Anne's browser: the banner goes and stays away after a reload.
    await page_a.click("#notifications-later")
    await expect(page_a.locator("#notifications-banner")).to_have_count(0)
    await page_a.reload()
    await expect(page_a.locator("#new-conversation")).to_be_visible()
    await expect(page_a.locator("#notifications-banner")).to_have_count(0)
    await ctx_p.grant_permissions(["notifications"], origin=server.url)
    await button.click()
    await expect(page_p.locator("#notifications-banner")).to_have_count(0)
    await page_p.evaluate(RECORD)

    # Shown page: no notification.
    await start_direct(page_a, paul.account.user_id)
    await send_text(page_a, "Bonjour Paul")
    await open_room(page_p)
    await received(page_p, "Bonjour Paul")
    room = page_p.url.rsplit("/", 1)[-1]
    assert await shown(page_p) == []

    # Hidden page: a notification that names the sender, never the text.
    await page_p.evaluate(HIDDEN, True)
    await send_text(page_a, "Résultats du bilan sanguin de Mme D.")
    assert await eventually(lambda: _count(page_p, 1))
    (first,) = await shown(page_p)
    assert first["title"] == "Confrère" and first["body"].startswith("Nouveau message de ")
    assert "Anne Éluard" in first["body"] and "bilan" not in first["body"]
    # A click on one opens its conversation (from the bare list, here).
    await page_p.goto(server.url + "/conversations")
    await expect(page_p.locator("#connection")).to_have_attribute("data-state", "online")
    await page_p.evaluate(RECORD)
    await page_p.evaluate(HIDDEN, True)
    await send_text(page_a, "Pouvez-vous rappeler ?")
    assert await eventually(lambda: _count(page_p, 1))
    await page_p.evaluate("window.made[0].onclick()")
    await expect(page_p).to_have_url(f"{server.url}/conversations/{room}")
    await received(page_p, "Pouvez-vous rappeler ?")

    # "Mentions uniquement": a plain message stays quiet, a mention comes through.
    await set_notify(page_p, "mentions")
    await send_text(page_a, "Sans mention")
    await received(page_p, "Sans mention")
    await mention(page_a, "Pau", " pouvez-vous regarder ?")
    await received(page_p, "Paul Durand pouvez-vous regarder ?")
    assert await eventually(lambda: _count(page_p, 2))

    # "Aucune": not even a mention.
    await set_notify(page_p, "none")
    await mention(page_a, "Pau", " encore ?")
    await received(page_p, "Paul Durand encore ?")
    await send_text(page_a, "Dernier message")
    await received(page_p, "Dernier message")
    assert len(await shown(page_p)) == 2
    # Elsewhere than a direct conversation, where only: never who, never what.
    places = await page_p.evaluate(
        """async () => {
            const { textOf } = await import("/app/notify.js");
            const m = { sender: "someone" };
            return [textOf({ kind: "patient_case" }, m), textOf({ kind: "group" }, m)];
        }"""
    )
    assert places == ["Nouveau message dans un dossier patient", "Nouveau message dans un groupe"]
    assert anne.errors == [] and paul.errors == []
    await anne.context.close()
    await paul.context.close()


async def _count(page: Page, n: int) -> bool:
    return len(await shown(page)) == n
