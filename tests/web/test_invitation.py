"""A guest invited by e-mail follows the link of the invitation: the sign-up page has
the address filled in and says a conversation awaits; after sign-up, the e-mail code
and the identity check, the guest lands in that conversation, sees who invited them by
name, and reads what was written since the invitation. At both sizes."""

from __future__ import annotations

import pytest
from browser_kit import (
    eventually,
    fill_sign_up,
    invite_by_email,
    log_in,
    named_practitioner,
    new_group,
    open_client,
    screenshot,
    send_text,
)
from playwright.async_api import Browser, Page, expect
from verification_kit import email_code, outbox_mails

from harness import PASSWORD, ServerUnderTest

pytestmark = pytest.mark.asyncio(loop_scope="session")  # the shared browser and server


async def test_guest_follows_the_invitation_into_the_conversation(
    server: ServerUnderTest, browser: Browser, viewport: dict[str, int]
) -> None:
    anne = await named_practitioner(server, "Anne", "Martin", "Pneumologie", "Lyon")
    guest = f"ines.roux.{viewport['width']}@example.fr"
    ctx_a, page_a, errors_a = await open_client(browser, server.url, viewport)
    await log_in(page_a, anne)
    await new_group(page_a, "Suivi BPCO")
    await send_text(page_a, "Avant l'invitation")
    await invite_by_email(page_a, guest)
    await send_text(page_a, "Bienvenue : le compte rendu suit.")

    # The e-mail the guest receives, and its link.
    async def invitation() -> list[dict[str, object]]:
        return await outbox_mails(server, guest, "guest_invitation")

    assert await eventually(invitation)
    [mail] = await invitation()
    assert mail["inviter"] == "Anne Martin"
    url = str(mail["signup_url"])
    assert url.startswith(server.url + "/inscription?")

    ctx_g, page_g, errors_g = await open_client(
        browser, server.url, viewport, url[len(server.url) :]
    )
    await expect(page_g.locator("#invitation-banner")).to_contain_text(
        "Un confrère vous a invité(e) à une conversation sécurisée : elle vous attend."
    )
    await expect(page_g.locator("#invitation-banner")).to_contain_text(guest)
    form = page_g.locator("#signup-form")
    await expect(form.locator("input[name=email]")).to_have_value(guest)
    await screenshot(page_g, "invitation")
    await fill_sign_up(
        page_g,
        practice_mode="salarie",
        first_name="Inès",
        last_name="Roux",
        postcode="69007",
        city="Lyon",
        password=PASSWORD,
    )
    await form.locator("button[type=submit]").click()
    await expect(page_g).to_have_url(server.url + "/verification")
    await page_g.fill("#email-code-form input[name=code]", await email_code(server, guest))
    await page_g.click("#email-code-form button[type=submit]")
    await expect(page_g.locator("#verification-status")).to_have_text("Identité non vérifiée")

    # Promoted at the confirmation (Anne sees it); verified as a reviewer would.
    await expect(page_a.locator(".event").last).to_have_text(
        "Inès Roux, invité(e) par e-mail, a rejoint la conversation"
    )
    user = await server.store.user_by_email(guest)
    assert user is not None
    await server.store.set_verified(user.id, True)

    # Straight into the conversation that waited.
    await expect(page_g.locator("#room-title")).to_have_text("Suivi BPCO")
    await expect(page_g).to_have_url(f"{server.url}/conversations/{await room_of(page_a)}")
    readable = page_g.locator(".msg.theirs:not(.bad)")
    await expect(readable.locator(".text")).to_have_text(["Bienvenue : le compte rendu suit."])
    await expect(readable.locator(".sender")).to_have_text(["Anne Martin✔"])
    await expect(page_g.locator(".event").first).to_have_text("Anne Martin a créé la conversation")
    await send_text(page_g, "Merci, bien reçu.")
    await expect(page_a.locator(".msg.theirs .sender").last).to_have_text("Inès Roux✔")
    assert errors_a == [] and errors_g == []
    await ctx_g.close()
    await ctx_a.close()


async def room_of(page: Page) -> str:
    """The id of the conversation open in ``page`` (from its address)."""
    return page.url.rsplit("/", 1)[-1]
