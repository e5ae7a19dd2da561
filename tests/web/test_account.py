"""Sign-up in the browser with the guide's form (its fields, in its order), the
server's refusals in French, step 2 (the e-mail code), then identity verification by
manual review (an identity card and a selfie); the messaging opens by itself once the
identity is verified. At both sizes."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser_kit import fill_sign_up, open_client, screenshot
from playwright.async_api import Browser, expect
from verification_kit import email_code

from harness import PASSWORD, ServerUnderTest

pytestmark = pytest.mark.asyncio(loop_scope="session")  # the shared browser and server

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8  # a "photo" by its signature
GUIDE_ORDER = [
    "first_name",
    "last_name",
    "email",
    "postcode",
    "city",
    "specialty",
    "practice_mode",
    "rpps",
    "password",
    "terms",
    "privacy",
]


async def test_sign_up_verify_and_enter_without_reloading(
    server: ServerUnderTest, browser: Browser, viewport: dict[str, int], tmp_path: Path
) -> None:
    email = f"claire.bernard.{viewport['width']}@example.fr"
    context, page, errors = await open_client(browser, server.url, viewport)
    await page.click("#to-signup")
    await expect(page).to_have_url(server.url + "/inscription")
    await expect(page.locator("h1")).to_have_text("Créez gratuitement votre compte")
    await expect(page.locator("#psc-signup")).to_contain_text(
        "CONTINUER AVEC MA CARTE CPS OU E-CPS"
    )
    await expect(page.locator("#psc-signup")).to_contain_text("Inscription rapide (recommandée)")
    form = page.locator("#signup-form")
    names = await form.locator("input, select").evaluate_all(
        "els => [...new Set(els.map(e => e.name))]"
    )
    assert names == GUIDE_ORDER
    await expect(form).to_contain_text("Quel est votre mode d'exercice dans ce lieu ?")
    await expect(form.locator("select[name=specialty] option").first).to_have_text(
        "Sélectionner une spécialité"
    )
    await screenshot(page, "inscription", full_page=True)
    await fill_sign_up(
        page,
        first_name="Claire",
        last_name="Bernard",
        email=email,
        postcode="69003",
        city="Lyon",
        password="motdepasse123",  # refused by the server: too common
    )
    await form.locator("button[type=submit]").click()
    await expect(page.locator("#signup-error")).to_have_text(
        "Ce mot de passe est trop courant (il figure dans des listes de mots de passe"
        " dérobés) : choisissez-en un autre."
    )
    await form.locator("input[name=password]").fill(PASSWORD)
    await form.locator("button[type=submit]").click()

    # Step 2: the e-mail address, with the code sent (a wrong one first).
    await expect(page).to_have_url(server.url + "/verification")
    await expect(page.locator(".steps .active")).to_contain_text("Vérification de l'adresse e-mail")
    user = await server.store.user_by_email(email)
    assert user is not None and not user.verified and not user.email_confirmed
    code = await email_code(server, email)
    await page.fill("#email-code-form input[name=code]", "000000" if code != "000000" else "111111")
    await page.click("#email-code-form button[type=submit]")
    await expect(page.locator("#code-error")).to_have_text(
        "Ce n'est pas le code envoyé : vérifiez l'e-mail reçu."
    )
    await page.fill("#email-code-form input[name=code]", code)
    await page.click("#email-code-form button[type=submit]")

    # The identity: the guide's two ways; here the manual one.
    await expect(page.locator("#verification-status")).to_have_text("Identité non vérifiée")
    await expect(page.locator("#psc")).to_have_text("VÉRIFIER MON IDENTITÉ")
    await expect(page.locator("#ecps-hint")).to_contain_text("8 pour un numéro RPPS")
    await page.click("#manual-start")
    photo = tmp_path / "photo.png"
    photo.write_bytes(PNG)
    manual = page.locator("#manual-form")
    await manual.locator("input[name=document][value=id_card]").check()
    await manual.locator("select[name=issuing_country]").select_option("BE")
    for side in ("front", "back", "selfie"):
        await manual.locator(f"input[data-side={side}]").set_input_files(str(photo))
        await expect(manual.locator(f".photo-status[data-side={side}]")).to_have_text(
            "✔ Photo envoyée"
        )
    await manual.locator("button[type=submit]").click()
    await expect(page.locator("#manual-pending")).to_contain_text("jusqu'à 24 heures")
    [request] = await server.store.identity_requests_of(user.id)
    assert (request.document, request.issuing_country, request.state) == (
        "id_card",
        "BE",
        "pending",
    )

    await server.store.set_verified(user.id, True)  # as a reviewer's approval does
    await expect(page.locator("#new-conversation")).to_be_visible()
    await expect(page.locator(".notice")).to_contain_text("Félicitations")
    await expect(page.locator("#connection")).to_have_attribute("data-state", "online")
    assert errors == []
    await context.close()
