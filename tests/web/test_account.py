"""Sign-up in the browser, the verification status and its steps (e-mail code, then
identity photos for manual review), the messaging opening by itself once verified; a
patient case with its encrypted header, closed and reopened; inviting a colleague who
has no account by e-mail, as a guest."""

from __future__ import annotations

from pathlib import Path

import httpx
from browser_kit import eventually, log_in, open_client
from playwright.async_api import Browser, expect
from verification_kit import email_code

from harness import PASSWORD, ServerUnderTest, practitioner

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8  # a "photo" by its signature


async def test_sign_up_verify_and_enter_without_reloading(
    server: ServerUnderTest, browser: Browser, tmp_path: Path
) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        specialty = (await http.get("/v1/accounts/form")).json()["specialties"][0]
    email = "claire.bernard@example.fr"
    context, page, errors = await open_client(browser, server.url)
    await page.click("text=Créer un compte")
    form = page.locator("#signup-form")
    for name, value in {
        "first_name": "Claire",
        "last_name": "Bernard",
        "email": email,
        "password": PASSWORD,
        "postcode": "69003",
        "city": "Lyon",
        "specialty": specialty,
    }.items():
        await form.locator(f"input[name={name}]").fill(value)
    await form.locator("input[name=consent]").check()
    await form.locator("button[type=submit]").click()

    await expect(page.locator("#verification-status")).to_have_text("Identité non vérifiée")
    user = await server.store.user_by_email(email)
    assert user is not None and not user.verified
    await page.fill("#email-code-form input[name=code]", await email_code(server, email))
    await page.click("#email-code-form button[type=submit]")
    await expect(page.locator("#email-step")).to_contain_text("confirmée")
    # Manual verification: an identity card (front, back) and a selfie, then review.
    photo = tmp_path / "photo.png"
    photo.write_bytes(PNG)
    manual = page.locator("#manual-form")
    await manual.locator("select[name=document]").select_option("id_card")
    for side in ("front", "back", "selfie"):
        await manual.locator(f"input[data-side={side}]").set_input_files(str(photo))
        await expect(page.locator("#identity-step .error")).to_have_text("Photo envoyée.")
        await page.locator("#identity-step .error").evaluate("e => e.textContent = ''")
    await manual.locator("button[type=submit]").click()
    await expect(page.locator("#manual-pending")).to_be_visible()
    [request] = await server.store.identity_requests_of(user.id)
    assert (request.document, request.state) == ("id_card", "pending")

    await server.store.set_verified(user.id, True)  # as a reviewer's approval does
    await expect(page.locator("#new-conversation")).to_be_visible(timeout=15_000)
    await expect(page.locator("#connection")).to_have_attribute("data-state", "online")
    assert errors == []
    await context.close()


async def test_invite_a_colleague_by_email(server: ServerUnderTest, browser: Browser) -> None:
    anne = await practitioner(server.url, server.store)
    colleague = await practitioner(server.url, server.store)
    context, page, errors = await open_client(browser, server.url)
    await log_in(page, anne)
    await page.click("#new-conversation")
    await page.click("#new-conversation-dialog nav button[data-kind=patient_case]")
    dialog = page.locator("#new-conversation-dialog")
    await dialog.locator("input[name=name]").fill("RCP cardiologie")
    await dialog.locator("textarea[name=header]").fill("M. Jean Dupont, né le 01/02/1950")
    await page.fill("#directory-search", colleague.user_id)
    await page.click("#search-results button.by-id")
    await page.click("#create-room")
    await expect(page.locator("#room-title")).to_have_text("RCP cardiologie")
    await expect(page.locator("#case-header")).to_have_text("M. Jean Dupont, né le 01/02/1950")

    await page.click("#case-status")  # closed: read-only
    await expect(page.locator(".closed")).to_contain_text("lecture seule")
    await page.click("#case-status")  # open again
    await expect(page.locator("#composer")).to_be_visible()

    await page.click("#invite")
    await page.fill("#invite-email", "nouveau.confrere@example.fr")
    await page.click("#invite-email-form button[type=submit]")
    await expect(page.locator("dialog")).to_contain_text("Invitation envoyée")
    await expect(page.locator(".chat-header .members")).to_contain_text(
        "invités : nouveau.confrere@example.fr"
    )
    assert await eventually(
        lambda: server.store.notifications(recipient="nouveau.confrere@example.fr")
    )
    assert errors == []
    await context.close()
