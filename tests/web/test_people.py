"""Who is who in the browser: two practitioners who never searched each other (a
colleague put them in a group) see each other's names everywhere: the room list, the
timeline's events and senders, typing, read receipts, the member list with roles and
presence, the profile card (from a sender, a member, a directory result) and the direct
conversation it opens. The README's screenshots of the messaging are taken here, at
both sizes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from browser_kit import (
    eventually,
    log_in,
    named_practitioner,
    open_client,
    open_room,
    screenshot,
    send_text,
    to_list,
)
from playwright.async_api import Browser, Page, Request, expect

from clients.python import EncryptedClient
from harness import ServerUnderTest

pytestmark = pytest.mark.asyncio(loop_scope="session")  # the shared browser and server


def searches(page: Page) -> list[str]:
    """Directory searches the page makes (there must be none until the last step)."""
    seen: list[str] = []

    def on_request(request: Request) -> None:
        if "/v1/directory/search" in request.url:
            seen.append(request.url)

    page.on("request", on_request)
    return seen


async def test_names_everywhere(
    server: ServerUnderTest, browser: Browser, viewport: dict[str, int], tmp_path: Path
) -> None:
    anne = await named_practitioner(
        server, "Anne", "Martin", "Cardiologie et maladies vasculaires", "Lyon"
    )
    paul = await named_practitioner(server, "Paul", "Durand", "Médecine générale", "Villeurbanne")
    claire = await named_practitioner(server, "Claire", "Petit", "Pneumologie", "Lyon")
    ctx_a, page_a, errors_a = await open_client(browser, server.url, viewport)
    ctx_p, page_p, errors_p = await open_client(browser, server.url, viewport)
    searched = searches(page_a) + searches(page_p)
    searched_a, searched_p = searches(page_a), searches(page_p)
    await log_in(page_a, anne)
    await log_in(page_p, paul)
    # Claire names the room for the members' devices (its name is end-to-end encrypted).
    host = EncryptedClient(claire, tmp_path / "claire.key")
    await host.connect()
    try:
        room = await host.create_room("group", [anne.user_id, paul.user_id], name="RCP cardiologie")
    finally:
        await host.close()

    await open_room(page_a, "RCP cardiologie")
    await expect(page_a.locator(".event").first).to_have_text("Claire Petit a créé la conversation")
    await expect(page_a.locator("#room-subtitle")).to_contain_text("3 membres")
    await send_text(page_a, "Bonjour à tous, le dossier de M. D. est prêt.")

    # Paul: the list says who wrote, the timeline too (with the specialty).
    await to_list(page_p)
    room_p = page_p.locator(f"[data-testid=room][data-room='{room.id}']")
    await expect(room_p).to_contain_text("Anne Martin : Bonjour à tous")
    await expect(room_p.locator("[data-testid=unread]")).to_have_text("1")
    await room_p.click()
    theirs = page_p.locator(".msg.theirs").last
    await expect(theirs.locator(".sender")).to_have_text("Anne Martin✔")
    await expect(theirs.locator(".sender-specialty")).to_contain_text(
        "Cardiologie et maladies vasculaires"
    )
    await page_p.type("#composer", "Je le regarde")
    await expect(page_a.locator("#typing")).to_have_text("Paul Durand écrit…")
    await page_p.click("#send")
    await expect(page_a.locator(".msg.theirs .sender").last).to_have_text("Paul Durand✔")
    await expect(page_a.locator(".msg.mine [data-testid=receipt]").first).to_have_text(
        "✓✓ Lu par Paul Durand"
    )

    # The members, with their roles and presence.
    await page_a.click("#room-info")
    members = page_a.locator("#member-list .member")
    await expect(members).to_have_count(3)
    await expect(members.nth(0)).to_contain_text("Claire Petit")
    await expect(members.nth(0).locator(".role")).to_have_text("Propriétaire")
    await expect(page_a.locator(f"#member-list [data-user='{anne.user_id}']")).to_contain_text(
        "Anne Martin (vous)"
    )
    paul_row = page_a.locator(f"#member-list [data-user='{paul.user_id}']")
    await expect(paul_row).to_contain_text("Paul Durand")
    await expect(paul_row.locator(".presence")).to_have_class(re.compile(r"\bonline\b"))
    claire_row = page_a.locator(f"#member-list [data-user='{claire.user_id}']")
    await expect(claire_row.locator(".presence")).to_have_class(re.compile(r"\boffline\b"))
    # A member's card, from the list.
    await claire_row.locator(".member-name").click()
    card = page_a.locator("#profile-card")
    await expect(card.locator("#profile-name")).to_have_text("Claire Petit✔")
    await expect(card).to_contain_text("Pneumologie")
    await card.get_by_role("button", name="Fermer").click()
    await page_a.locator("#room-details").get_by_role("button", name="Fermer").click()

    # A sender's card opens the direct conversation, titled with the name on both sides.
    await page_a.locator(".msg.theirs .sender").last.click()
    await expect(page_a.locator("#profile-card #profile-name")).to_have_text("Paul Durand✔")
    await expect(page_a.locator("#profile-card")).to_contain_text("Identité vérifiée")
    await page_a.click("#profile-card #write-to")
    await expect(page_a.locator("#room-title")).to_have_text("Paul Durand✔")
    await send_text(page_a, "Un mot en privé")
    await to_list(page_p)
    direct_p = page_p.locator("[data-testid=room][data-kind=direct]")
    await expect(direct_p.locator(".room-name")).to_have_text("Anne Martin")
    await direct_p.click()
    await expect(page_p.locator("#room-title")).to_have_text("Anne Martin✔")
    await expect(page_p.locator(".msg.theirs .sender")).to_have_text("Anne Martin✔")

    # Nowhere an id or a placeholder instead of a name; and no directory search so far.
    for page in (page_a, page_p):
        text = await page.locator("body").inner_text()
        for someone in (anne, paul, claire):
            assert someone.user_id not in text
        assert "Confrère" not in text.replace("Confrère\n", "").split("Se déconnecter")[-1]
        assert "…" not in (await page.locator("#room-list, #messages").all_inner_texts())[0]
    assert searched == [] and searched_a == [] and searched_p == []

    # A directory result's card: the same person's.
    async def findable() -> bool:
        hits = await page_p.evaluate(
            """async (q) => {
                const { rest } = await import("/app/state.js");
                return (await rest.search(q)).results.map((r) => r.user);
            }""",
            "Martin Anne",
        )
        return anne.user_id in hits

    assert await eventually(findable)
    await to_list(page_p)
    await page_p.click("#new-conversation")
    await page_p.fill("#directory-search", "Martin Anne")
    hit = page_p.locator(f"#search-results .person-row:has(button[data-user='{anne.user_id}'])")
    await hit.locator("button.info").click()
    await expect(page_p.locator("#profile-card #profile-name")).to_have_text("Anne Martin✔")
    await expect(page_p.locator("#profile-card #in-directory")).to_be_visible()

    await shoot(page_a, page_p)
    assert errors_a == [] and errors_p == []
    await ctx_a.close()
    await ctx_p.close()


async def shoot(page_a: Page, page_p: Page) -> None:
    """The README's pictures: a conversation, the list, the members."""
    await page_p.keyboard.press("Escape")
    await page_p.keyboard.press("Escape")
    await open_room(page_a, "RCP cardiologie")
    await screenshot(page_a, "conversation")
    await to_list(page_a)
    await screenshot(page_a, "conversations")
    await open_room(page_a, "RCP cardiologie")
    await page_a.click("#room-info")
    await expect(page_a.locator("#member-list .member")).to_have_count(3)
    await screenshot(page_a, "members")
