"""The account lifecycle in the browser, at both sizes: a forgotten password reset from
the log-in screen (the code from the e-mail), which closes the old browser's session at
once; then, from the new browser's "Sécurité" page, the old browser's new session is
closed, and the old browser is back at the log-in screen. The password change form
says in French when the current password is wrong. "Mes données": the export is
downloaded, then the account deleted (the password again)."""

from __future__ import annotations

import json

import pytest
from browser_kit import named_practitioner, open_client, read_file, screenshot
from playwright.async_api import Browser, Page, expect
from verification_kit import email_code

from harness import PASSWORD, ServerUnderTest

pytestmark = pytest.mark.asyncio(loop_scope="session")  # the shared browser and server

NEW_PASSWORD = "la glycine du cabinet fleurit en avril"


async def logged_in(page: Page, email: str, password: str) -> None:
    await expect(page.locator("#login-form")).to_be_visible()
    await page.fill("#login-form input[name=email]", email)
    await page.fill("#login-form input[name=password]", password)
    await page.click("#login-form button[type=submit]")
    await expect(page.locator("#connection")).to_have_attribute("data-state", "online")


async def signed_out(page: Page) -> None:
    """The session was closed by the server: the log-in screen says it expired."""
    await expect(page.locator("#login-form")).to_be_visible()
    await expect(page.locator("#auth-error")).to_have_text(
        "Votre session a expiré : reconnectez-vous."
    )


async def test_reset_a_forgotten_password_then_close_the_old_browser(
    server: ServerUnderTest, browser: Browser, viewport: dict[str, int]
) -> None:
    account = await named_practitioner(server, "Sophie", "Garnier", "Pédiatrie", "Nantes")
    old_context, old, old_errors = await open_client(browser, server.url, viewport)
    new_context, new, new_errors = await open_client(browser, server.url, viewport)
    try:
        await logged_in(old, account.email, PASSWORD)

        # The new browser: "Mot de passe oublié ?" from the log-in screen.
        await new.fill("#login-form input[name=email]", account.email)
        await new.click("#to-reset")
        address = account.email.replace("@", "%40")
        await expect(new).to_have_url(f"{server.url}/mot-de-passe-oublie?email={address}")
        await expect(new.locator("h1")).to_have_text("Mot de passe oublié")
        await expect(new.locator("#reset-request-form input[name=email]")).to_have_value(
            account.email
        )
        await screenshot(new, "mot-de-passe-oublie")
        await new.click("#reset-request-form button[type=submit]")
        await expect(new.locator("#reset-sent")).to_contain_text(account.email)
        code = await email_code(server, account.email, "password_reset")
        form = new.locator("#reset-form")
        await form.locator("input[name=code]").fill("000000" if code != "000000" else "111111")
        await form.locator("input[name=password]").fill(NEW_PASSWORD)
        await form.locator("button[type=submit]").click()
        await expect(new.locator("#reset-error")).to_have_text(
            "Ce n'est pas le code envoyé : vérifiez l'e-mail reçu."
        )
        await form.locator("input[name=code]").fill(code)
        await form.locator("input[name=password]").fill("azerty12345")
        await form.locator("button[type=submit]").click()
        await expect(new.locator("#reset-error")).to_contain_text("trop courant")
        await form.locator("input[name=password]").fill(NEW_PASSWORD)
        await screenshot(new, "mot-de-passe-code")
        await form.locator("button[type=submit]").click()
        await expect(new.locator(".notice")).to_contain_text("Votre mot de passe a été changé")
        # A new device of an account that has another: it asks to be approved (SPEC.md
        # §10.5); the old browser is signed out, so it goes on without the history.
        await expect(new.locator("#link-code")).to_be_visible()
        await new.click("#skip-link")
        await new.click("#confirm")
        await expect(new.locator("#connection")).to_have_attribute("data-state", "online")
        # The reset closed every session: the old browser is signed out at once.
        await signed_out(old)

        # The old browser signs in again; the new one closes that session.
        await logged_in(old, account.email, NEW_PASSWORD)
        await new.click("#account-security")
        await expect(new).to_have_url(server.url + "/compte/securite")
        sessions = new.locator("[data-testid=session]")
        await expect(sessions).to_have_count(2)
        await expect(new.locator("[data-testid=session][data-current='1']")).to_contain_text(
            "Cette session"
        )
        await screenshot(new, "securite", full_page=True)
        # A wrong current password, in French.
        password_form = new.locator("#password-form")
        await password_form.locator("input[name=password]").fill("pas le bon mot de passe")
        await password_form.locator("input[name=new_password]").fill(NEW_PASSWORD + " !")
        await password_form.locator("button[type=submit]").click()
        await expect(new.locator("#password-error")).to_have_text(
            "Ce n'est pas votre mot de passe actuel."
        )
        other = new.locator("[data-testid=session]:not([data-current='1'])")
        await other.locator("button.revoke").click()
        await expect(sessions).to_have_count(1)
        await signed_out(old)
        await new.click("#back-to-messaging")
        await expect(new.locator("#connection")).to_have_attribute("data-state", "online")
        assert old_errors == [] and new_errors == []
    finally:
        await old_context.close()
        await new_context.close()


async def test_download_my_data_then_delete_my_account(
    server: ServerUnderTest, browser: Browser, viewport: dict[str, int]
) -> None:
    account = await named_practitioner(server, "Lucie", "Perrin", "Pneumologie", "Rennes")
    context, page, errors = await open_client(browser, server.url, viewport)
    try:
        await logged_in(page, account.email, PASSWORD)
        await page.click("#account-security")
        async with page.expect_download() as download_info:
            await page.click("#export")
        download = await download_info.value
        assert download.suggested_filename == "confrere-mes-donnees.json"
        data = json.loads(await read_file(await download.path()))
        assert data["account"]["email"] == account.email
        form = page.locator("#delete-form")
        await form.locator("input[name=password]").fill("pas le bon mot de passe")
        await form.locator("button[type=submit]").click()
        await page.click("#confirm")
        await expect(page.locator("#data-error")).to_have_text(
            "Ce n'est pas votre mot de passe actuel."
        )
        await form.locator("input[name=password]").fill(PASSWORD)
        await screenshot(page, "mes-donnees", full_page=True)
        await form.locator("button[type=submit]").click()
        await page.click("#confirm")
        await expect(page.locator("#account-deleted")).to_have_text("Votre compte a été supprimé.")
        await expect(page.locator("#login-form")).to_be_visible()
        assert await server.store.user_by_email(account.email) is None
        assert errors == []
    finally:
        await context.close()
