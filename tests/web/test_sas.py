"""The SAS regulator console in the browser, as the SAS guide tells it: a regulator
signs up through the secure link an administrator had e-mailed ("Régulateur" at the
bottom of the list), finds the slots open to the SAS by area, specialty and dates,
books one: the consultation type "En vidéo", "Soins non programmés" chosen for them,
the practitioner's instructions accepted first, the extra patient field that
practitioner requires named when missing. The practitioner's agenda has it, marked
SAS, in video. README screenshots."""

from __future__ import annotations

import pytest
from agenda_kit import api, open_agenda
from browser_kit import fill_sign_up, named_practitioner, open_client, screenshot
from playwright.async_api import Browser, expect
from verification_kit import email_code, outbox_mails

from harness import PASSWORD, ServerUnderTest
from server.clock import now_ms

pytestmark = pytest.mark.asyncio(loop_scope="session")  # the shared browser and server

INSTRUCTIONS = (
    "Pour un rendez-vous URGENT ou PLUS RAPIDE, merci de passer par le SECRÉTARIAT en"
    " expliquant votre motif de consultation."
)


async def test_regulator_books_for_a_patient(
    server: ServerUnderTest, browser: Browser, viewport: dict[str, int]
) -> None:
    fabre = await named_practitioner(server, "Julien", "Fabre", "Médecine générale", "Lyon")
    agenda = await open_agenda(fabre, server, count=2, snp=True)
    await api(
        fabre,
        server,
        "PATCH",
        "/v1/directory/me",
        json={"instructions": INSTRUCTIONS, "required_fields": ["postcode"]},
    )
    admin = await named_practitioner(server, "Alice", "Moreau", "Santé publique", "Lyon")
    await server.store.grant_role(admin.user_id, "admin", now_ms())
    address = f"sas.{viewport['width']}.{now_ms()}@regulation.example.fr"
    await api(admin, server, "POST", "/v1/regulator-links", json={"email": address})
    [mail] = await outbox_mails(server, address, "regulator_link")

    # The sign-up behind the link: profession "Régulateur", then the e-mail code.
    ctx, page, errors = await open_client(browser, server.url, viewport)
    await page.goto(mail["url"])
    await expect(page.locator("h1")).to_have_text("Créez votre compte régulateur")
    await fill_sign_up(
        page,
        specialty="Régulateur",
        practice_mode="salarie",
        first_name="Sophie",
        last_name="Girard",
        postcode="69003",
        city="Lyon",
        password=PASSWORD,
    )
    await screenshot(page, "sas-signup")
    await page.locator("#signup-form button[type=submit]").click()
    await expect(page).to_have_url(server.url + "/verification")
    await page.fill("#email-code-form input[name=code]", await email_code(server, address))
    await page.click("#email-code-form button[type=submit]")
    await expect(page.locator("#nav-sas")).to_be_visible()
    await expect(page.locator("#nav-referral")).to_have_count(0)  # not a practitioner's

    # Eligible slots by area, specialty and dates.
    await page.click("#nav-sas")
    await page.fill("#sas-near", "69003")
    await page.select_option("#sas-specialty", "Médecine générale")
    await page.click("#sas-search-submit")
    first = agenda["slots"][0]["id"]
    row = page.locator(f"#sas-results [data-slot='{first}']")
    await expect(row).to_contain_text("Julien Fabre")
    await expect(row).to_contain_text("Soins non programmés")
    await expect(page.locator("#sas-results [data-testid=sas-slot]").first).to_be_visible()
    await screenshot(page, "sas-search", clear_notices=True)
    await row.locator(".book-sas").click()

    form = page.locator("#sas-booking-form")
    await expect(form.locator("#sas-practitioner")).to_contain_text("Julien Fabre")
    await expect(form.locator("#sas-motive option:checked")).to_have_text("Soins non programmés")
    await expect(form.locator("#booking-instructions")).to_contain_text(INSTRUCTIONS)
    await expect(form.locator("#sas-form-body")).to_be_hidden()
    await form.locator("#accept-instructions").click()
    await form.locator("input[name=consultation_type][value=video]").check()
    await form.evaluate("form => form.scrollIntoView()")
    await screenshot(page, "sas-booking", clear_notices=True)
    await expect(form.locator("#message-notice")).to_contain_text(
        "Attention : ce message ne sera pas lu en temps réel"
    )
    await form.locator("input[name=patient-civility][value=madame]").check()
    await form.locator("#patient-first_name").fill("Marie")
    await form.locator("#patient-last_name").fill("Durand")
    await form.locator("#patient-birth_name").fill("Durand")
    await form.locator("#patient-birth_date").fill("21/11/1952")
    await form.locator("#patient-phone").fill("06 45 37 26 53")
    await form.locator("#referral-message").fill(
        "Le patient présente les symptômes suivants : fièvre"
    )
    await page.click("#sas-confirm")
    # Dr Fabre asks for the postcode too: named before anything is sent.
    await expect(form.locator("#patient-postcode-error")).to_have_text("Ce champ est obligatoire.")
    await form.locator("#patient-postcode").fill("69003")
    await page.click("#sas-confirm")
    done = page.locator("#sas-confirmed")
    await expect(done).to_contain_text("Le rendez-vous est confirmé")
    await expect(done).to_contain_text("En vidéo")
    await expect(done).to_contain_text("Soins non programmés")
    await screenshot(page, "sas-confirmed", clear_notices=True)

    booked = (await api(fabre, server, "GET", "/v1/agenda"))["appointments"]
    assert [(a["slot"], a["via"], a["consultation_type"]) for a in booked] == [
        (first, "sas", "video")
    ]
    assert booked[0]["patient"]["postcode"] == "69003"
    assert errors == []
    await ctx.close()
