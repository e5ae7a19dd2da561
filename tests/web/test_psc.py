"""Pro Santé Connect in the browser, against the tests' own OpenID provider: the
cookie of the start goes with the callback, the outcome in the fragment is shown
(verified: the messaging opens; a name mismatch: the manual path; an error: in
French), the e-CPS identifier with its prefix is shown; and signing up with the card
("Inscription rapide") pre-fills the form and makes a verified account that still
confirms its e-mail. At both sizes."""

from __future__ import annotations

import httpx
import pytest
from browser_kit import fill_sign_up, open_client, screenshot
from oidc_provider import OidcProvider, card
from playwright.async_api import Browser, Page, expect
from verification_kit import email_code, psc_callback, signed_up

from harness import PASSWORD, ServerUnderTest

pytestmark = pytest.mark.asyncio(loop_scope="session")  # the shared browser and server


def rpps(root: int) -> str:
    """A valid RPPS number (its Luhn key computed): each test uses numbers of its own."""
    digits = f"{root:010d}"
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return digits + str((10 - total % 10) % 10)


async def test_verification_by_card_and_its_mismatch(
    server: ServerUnderTest,
    provider: OidcProvider,
    browser: Browser,
    viewport: dict[str, int],
) -> None:
    number = rpps(1000300000 + viewport["width"])
    account, _ = await signed_up(server, rpps=number, first_name="Hélène", last_name="Lefèvre")
    context, page, errors = await open_client(browser, server.url, viewport)
    await log_in_unverified(page, account.email)
    await expect(page.locator("#ecps-hint strong")).to_have_text("8" + number)
    await expect(page.locator("#ecps-hint")).to_contain_text(
        "préfixe : 8 pour un numéro RPPS, 0 pour un numéro ADELI"
    )
    await screenshot(page, "verification", full_page=True)

    # A card in another name: the account stays unverified, the manual path shows.
    provider.card = card("8" + number, "MARTIN", "HELENE")
    await page.click("#psc")
    await expect(page.locator("#psc-outcome")).to_contain_text(
        "ne correspondent pas à celles de votre compte (nom)"
    )
    await expect(page.locator("#mismatch-manual")).to_have_text("VÉRIFICATION MANUELLE")
    await expect(page.locator("#manual-form")).to_be_visible()
    assert "#" not in page.url  # the outcome is read once, then forgotten
    user = await server.store.user_by_id(account.user_id)
    assert user is not None and not user.verified

    # The provider's answer fails a check: said in French, nothing verified.
    provider.misbehave = {"nonce"}
    try:
        await page.click("#psc")
        await expect(page.locator("#psc-outcome")).to_have_text(
            "La réponse de Pro Santé Connect n'a pas pu être vérifiée : recommencez, ou"
            " utilisez la vérification manuelle."
        )
    finally:
        provider.misbehave = set()

    # The card of the account: verified; the messaging opens.
    provider.card = card("8" + number, "LEFEVRE", "HELENE MARIE")
    await page.click("#psc")
    await expect(page.locator("#new-conversation")).to_be_visible()
    await expect(page.locator("#me .badge.verified")).to_be_visible()
    await expect(page.locator(".notice")).to_contain_text("Félicitations")
    assert "#" not in page.url
    user = await server.store.user_by_id(account.user_id)
    assert user is not None and user.verified
    assert errors == []
    await context.close()


async def log_in_unverified(page: Page, email: str) -> None:
    await page.fill("#login-form input[name=email]", email)
    await page.fill("#login-form input[name=password]", PASSWORD)
    await page.click("#login-form button[type=submit]")
    await expect(page.locator("#verification-status")).to_have_text("Identité non vérifiée")


async def test_the_flow_belongs_to_the_browser_that_started_it(
    server: ServerUnderTest, provider: OidcProvider, browser: Browser, viewport: dict[str, int]
) -> None:
    """A callback opened in another browser (no cookie): refused, said in French."""
    number = rpps(1000400000 + viewport["width"])
    account, _ = await signed_up(server, rpps=number, first_name="Hélène", last_name="Lefèvre")
    provider.card = card("8" + number, "LEFEVRE", "HELENE")
    async with httpx.AsyncClient(base_url=server.url) as http:
        callback = await psc_callback(http, account)
    context, page, errors = await open_client(browser, server.url, viewport)
    await log_in_unverified(page, account.email)
    await page.goto(callback)
    await expect(page.locator("#psc-outcome")).to_contain_text(
        "Cette vérification a été commencée dans un autre navigateur"
    )
    assert errors == []
    await context.close()


async def test_sign_up_with_the_card(
    server: ServerUnderTest, provider: OidcProvider, browser: Browser, viewport: dict[str, int]
) -> None:
    number = rpps(1000500000 + viewport["width"])
    email = f"helene.{number}@example.fr"
    provider.card = card("8" + number, "LEFEVRE-DURAND", "HELENE MARIE")
    context, page, errors = await open_client(browser, server.url, viewport, "/inscription")
    await page.fill("#signup-form input[name=email]", email)  # kept across the trip
    await page.click("#psc-signup")
    await expect(page.locator("#psc-card")).to_contain_text("Carte CPS / e-CPS reconnue")
    form = page.locator("#signup-form")
    await expect(form.locator("input[name=first_name]")).to_have_value("Helene")
    await expect(form.locator("input[name=last_name]")).to_have_value("Lefevre-Durand")
    await expect(form.locator("input[name=rpps]")).to_have_value(number)
    await expect(form.locator("input[name=rpps]")).to_have_attribute("readonly", "")
    await expect(form.locator("input[name=email]")).to_have_value(email)
    await expect(page.locator("#psc-signup")).to_have_count(0)

    await form.locator("input[name=first_name]").fill("Hélène")  # accents put back
    await form.locator("input[name=last_name]").fill("Martin")  # not the card's
    await fill_sign_up(
        page,
        specialty="Cardiologie et maladies vasculaires",
        practice_mode="salarie",
        postcode="69003",
        city="Lyon",
        password=PASSWORD,
    )
    await form.locator("button[type=submit]").click()
    await expect(page.locator("#signup-error")).to_have_text(
        "« Nom » : Doit être identique à votre carte CPS ou e-CPS (seuls les accents et les"
        " majuscules peuvent changer)."
    )
    await form.locator("input[name=last_name]").fill("Lefèvre-Durand")
    await form.locator("button[type=submit]").click()

    # Verified by the card at creation; the address is still confirmed (step 2).
    await expect(page).to_have_url(server.url + "/verification")
    user = await server.store.user_by_email(email)
    assert user is not None and user.verified and user.rpps == number
    assert (user.first_name, user.last_name) == ("Hélène", "Lefèvre-Durand")
    await page.fill("#email-code-form input[name=code]", await email_code(server, email))
    await page.click("#email-code-form button[type=submit]")
    await expect(page.locator("#new-conversation")).to_be_visible()
    assert errors == []
    await context.close()


async def test_the_card_signs_up_one_account_only(
    server: ServerUnderTest, provider: OidcProvider, browser: Browser, viewport: dict[str, int]
) -> None:
    number = rpps(1000600000 + viewport["width"])
    account, _ = await signed_up(server, rpps=number, first_name="Hélène", last_name="Lefèvre")
    await server.store.set_verified(account.user_id, True)  # the number is taken
    provider.card = card("8" + number, "LEFEVRE", "HELENE")
    context, page, errors = await open_client(browser, server.url, viewport, "/inscription")
    await page.click("#psc-signup")
    form = page.locator("#signup-form")
    await expect(form.locator("input[name=rpps]")).to_have_value(number)
    await fill_sign_up(
        page, email=f"autre.{number}@example.fr", postcode="69003", city="Lyon", password=PASSWORD
    )
    await form.locator("button[type=submit]").click()
    await expect(page.locator("#signup-error")).to_have_text(
        "Un compte vérifié existe déjà avec ce numéro RPPS ou ADELI : connectez-vous à ce compte."
    )
    assert errors == []
    await context.close()
