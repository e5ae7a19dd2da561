"""Adressage in the browser, as the guide describes it: a practitioner finds a colleague
with the "Qui ?" and "Où ?" filters, adds and removes them from the favourites in one
click, picks a slot on their card, fills the patient form (a missing required field is
named first), joins a PDF and confirms; the receiving practitioner, on another page,
gets the alert and the badge at once, opens the agenda and the referral's detail with
the patient's fields and the document. Then two browsers race for one slot: one
booking, and one clear French message. README screenshots of each screen."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from pathlib import Path

import pytest
from agenda_kit import api, open_agenda, slot_day
from browser_kit import (
    log_in,
    named_practitioner,
    open_client,
    read_file,
    screenshot,
)
from playwright.async_api import Browser, Page, expect

from harness import ServerUnderTest
from server.postcodes import locate

pytestmark = pytest.mark.asyncio(loop_scope="session")  # the shared browser and server

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n"


async def fill_patient(page: Page, *, birth_name: bool = True) -> None:
    form = page.locator("#booking-form")
    await form.locator("input[name=patient-civility][value=madame]").check()
    await form.locator("#patient-first_name").fill("Marie")
    await form.locator("#patient-last_name").fill("Durand")
    if birth_name:
        await form.locator("#patient-birth_name").fill("Martin")
    await form.locator("#patient-birth_date").fill("21/11/1952")
    await form.locator("#patient-birth_place").fill("Douai")
    await form.locator("#patient-phone").fill("06 45 37 26 53")
    await form.locator("#patient-email").fill("marie.durand@email.com")
    await form.locator("input[name=patient-consulted_before][value=false]").check()


async def test_referral_journey(
    server: ServerUnderTest, browser: Browser, viewport: dict[str, int], tmp_path: Path
) -> None:
    garnier = await named_practitioner(
        server, "Hélène", "Garnier", "Cardiologie et maladies vasculaires", "Lyon"
    )
    durand = await named_practitioner(server, "Paul", "Durand", "Médecine générale", "Lyon")
    agenda = await open_agenda(garnier, server)
    profile = agenda["profile"]["id"]

    ctx_r, receiver, errors_r = await open_client(browser, server.url, viewport)
    ctx_d, page, errors_d = await open_client(browser, server.url, viewport)
    await log_in(receiver, garnier)
    await log_in(page, durand)

    # Adressage: Qui ? and Où ?, the colleague in the results.
    await page.click("#nav-referral")
    await expect(page.locator("h1")).to_have_text("Prendre rendez-vous en ligne chez un confrère")
    await page.fill("#who", "garnier cardio")
    await page.fill("#where", "69003")
    await page.click("#search-submit")
    hit = page.locator(f"#results [data-profile='{profile}']")
    await expect(hit).to_contain_text("Hélène Garnier")
    await expect(hit).to_contain_text("Cardiologie et maladies vasculaires")
    await expect(page).to_have_url(re.compile(r"/adressage\?q=garnier\+cardio&near=69003$"))
    # A favourite in one click, and out again in one click.
    await hit.locator("[data-testid=favourite]").click()
    favourite = page.locator(f"#favourites [data-profile='{profile}']")
    await expect(favourite).to_be_visible()
    await expect(hit.locator("[data-testid=favourite]")).to_have_attribute("aria-pressed", "true")
    await screenshot(page, "referral-search")
    await favourite.locator("[data-testid=favourite]").click()
    await expect(favourite).to_have_count(0)
    await hit.locator("[data-testid=favourite]").click()
    await expect(favourite).to_be_visible()

    # The card: places, motives, slots by day; a slot; the form.
    await hit.locator(".book").click()
    await expect(page).to_have_url(re.compile(f"/adressage/{profile}$"))
    await expect(page.locator("#practitioner-name")).to_contain_text("Hélène Garnier")
    await expect(page.locator("#places")).to_contain_text("Cabinet de Hélène Garnier")
    await expect(page.locator("#motive option")).to_have_text(
        ["Choisissez un motif", "Première consultation"]
    )
    slots = page.locator("#slots [data-testid=slot]")
    await expect(slots).to_have_count(4)
    await screenshot(page, "referral-card")
    await slots.first.click()
    await expect(page.locator("#booking-form")).to_be_visible()
    await expect(page.locator("#message-notice")).to_contain_text(
        "Le contenu de cette note engage la responsabilité de son auteur."
    )
    labels = await page.locator("#booking-form .patient-form .field > span").all_inner_texts()
    assert [x.rstrip(" *") for x in labels][:4] == [
        "Prénom du patient",
        "Nom du patient",
        "Nom de naissance du patient",
        "Date de naissance du patient",
    ]
    await fill_patient(page, birth_name=False)
    await page.fill("#referral-message", "Douleurs thoraciques à l'effort, ECG joint.")
    pdf = tmp_path / "ecg-marie-durand.pdf"
    await asyncio.to_thread(pdf.write_bytes, PDF)
    await page.set_input_files("#referral-file-input", str(pdf))
    await expect(page.locator("#referral-files")).to_contain_text("ecg-marie-durand.pdf")
    await page.click("#confirm-booking")
    # A required field left empty is named, in French, before anything is sent.
    await expect(page.locator("#patient-birth_name-error")).to_have_text(
        "Ce champ est obligatoire."
    )
    await page.fill("#patient-birth_name", "Martin")
    await page.locator("#booking-form").evaluate("form => form.scrollIntoView()")
    await screenshot(page, "referral-form")
    await page.click("#confirm-booking")
    confirmed = page.locator("#booking-confirmed")
    await expect(confirmed).to_contain_text("Le rendez-vous est confirmé")
    await expect(confirmed).to_contain_text("Mme Marie DURAND")
    await expect(confirmed).to_contain_text("1 document(s) joint(s)")
    await screenshot(page, "referral-confirmed")

    # The receiving practitioner, on the messaging: the alert and the badge, live.
    await expect(receiver.locator(".notice")).to_contain_text("Nouveau rendez-vous adressé")
    await expect(receiver.locator("#agenda-badge")).to_have_text("1")
    await receiver.click("#nav-agenda")
    await expect(receiver.locator("#agenda-badge")).to_have_count(0)
    booked = receiver.locator("#agenda-days [data-testid=appointment]")
    await expect(booked).to_have_count(1)
    await expect(booked).to_contain_text("Nouveau")
    await expect(booked).to_contain_text("Mme Marie DURAND — Première consultation")
    await screenshot(receiver, "agenda")
    await booked.click()
    detail = receiver.locator("#appointment-detail")
    await expect(detail.locator("#booked-by")).to_have_text("Paul Durand")
    fields = detail.locator("#patient-fields")
    await expect(fields.locator("[data-field=birth_name]")).to_have_text("Martin")
    await expect(fields.locator("[data-field=birth_date]")).to_have_text("21/11/1952")
    await expect(fields.locator("[data-field=phone]")).to_have_text("+33645372653")
    await expect(fields.locator("[data-field=consulted_before]")).to_have_text("Non")
    await expect(detail.locator("#referral-message-text")).to_have_text(
        "Douleurs thoraciques à l'effort, ECG joint."
    )
    async with receiver.expect_download() as download_info:
        await detail.locator("#referral-documents button.download").click()
    download = await download_info.value
    assert download.suggested_filename == "ecg-marie-durand.pdf"
    assert await read_file(await download.path()) == PDF
    # Each read of the record is listed (the server audits them).
    await expect(detail.locator("#referral-reads li").first).to_contain_text("Hélène Garnier")
    await screenshot(receiver, "agenda-referral")

    # The referrer's list of referrals sent, with their status.
    await page.click("#new-referral")
    sent = page.locator("#sent-referrals .sent-row")
    await expect(sent.first).to_contain_text("Confirmé, à venir")
    await expect(sent.first).to_contain_text("Mme Marie DURAND")
    await expect(sent.first).to_contain_text("Hélène Garnier")
    await sent.first.scroll_into_view_if_needed()
    await screenshot(page, "referral-sent")
    assert errors_r == [] and errors_d == []
    await ctx_r.close()
    await ctx_d.close()


async def test_around_me(
    server: ServerUnderTest, browser: Browser, viewport: dict[str, int]
) -> None:
    """ "Autour de moi": the browser's position (emulated, and allowed) finds the
    colleagues near it, with their distance; from elsewhere they are not there; a
    browser that does not give its position is told so in French."""
    lyon_3e = locate("69003")
    marseille_1er = locate("13001")
    assert lyon_3e is not None and marseille_1er is not None
    colleague = await named_practitioner(server, "Inès", "Vasseur", "Rhumatologie", "Lyon")
    profile = (await api(colleague, server, "GET", "/v1/directory/me"))["profile"]["id"]
    # Standing a few hundred metres from the colleague's practice. Each browser is its
    # account's first (another would wait for approval: SPEC.md §10.5).
    here = (lyon_3e.lat + 0.003, lyon_3e.lon - 0.004)
    for position, found in ((here, True), ((marseille_1er.lat, marseille_1er.lon), False)):
        me = await named_practitioner(server, "Alain", "Perrin", "Médecine générale", "Lyon")
        ctx, page, errors = await open_client(browser, server.url, viewport, position=position)
        await log_in(page, me)
        await page.click("#nav-referral")
        await page.fill("#who", "rhumatologie")
        await page.click("#around-me")
        await expect(page.locator("#where")).to_have_attribute("placeholder", "Autour de moi")
        await expect(page).to_have_url(re.compile(r"/adressage\?q=rhumatologie&lat=.*&lon="))
        hit = page.locator(f"#results [data-profile='{profile}']")
        if found:
            await expect(hit).to_contain_text("Inès Vasseur")
            await expect(hit).to_contain_text(re.compile(r"\b0,\d km"))
            await screenshot(page, "referral-around-me")
        else:
            await expect(page.locator("#results")).not_to_contain_text("Inès Vasseur")
            await expect(hit).to_have_count(0)
        assert errors == []
        await ctx.close()
    me = await named_practitioner(server, "Alain", "Perrin", "Médecine générale", "Lyon")
    ctx, page, errors = await open_client(browser, server.url, viewport)  # no position
    await log_in(page, me)
    await page.click("#nav-referral")
    await page.click("#around-me")
    await expect(page.locator("#search-error")).to_contain_text("Position indisponible")
    assert errors == []
    await ctx.close()


async def test_two_browsers_race_for_one_slot(
    server: ServerUnderTest, browser: Browser, viewport: dict[str, int]
) -> None:
    roux = await named_practitioner(server, "Louis", "Roux", "Pneumologie", "Lyon")
    agenda = await open_agenda(roux, server, count=1)
    profile = agenda["profile"]["id"]
    pages = []
    contexts = []
    for first, last in (("Claire", "Petit"), ("Marc", "Bernard")):
        account = await named_practitioner(server, first, last, "Médecine générale", "Lyon")
        ctx, page, _ = await open_client(browser, server.url, viewport)
        await log_in(page, account)
        await page.goto(f"{server.url}/adressage/{profile}")
        await expect(page.locator("#practitioner-name")).to_contain_text("Louis Roux")
        await page.locator("#slots [data-testid=slot]").click()
        await fill_patient(page)
        pages.append(page)
        contexts.append(ctx)
    await asyncio.gather(*(p.click("#confirm-booking") for p in pages))
    outcomes = []
    for page in pages:
        done = page.locator("#booking-confirmed, #booking-error.shown")
        await expect(done).to_be_visible()
        outcomes.append(await done.inner_text())
    won = [o for o in outcomes if "Le rendez-vous est confirmé" in o]
    lost = [o for o in outcomes if o not in won]
    assert len(won) == 1 and lost == [
        "Ce créneau vient d'être réservé par quelqu'un d'autre : choisissez-en un autre."
    ], outcomes
    # The loser's picker no longer offers the slot.
    loser = pages[outcomes.index(lost[0])]
    await expect(loser.locator("#slots [data-testid=slot]")).to_have_count(0)
    appointments = (await api(roux, server, "GET", "/v1/agenda"))["appointments"]
    assert len(appointments) == 1
    for ctx in contexts:
        await ctx.close()


async def test_agenda_settings(
    server: ServerUnderTest, browser: Browser, viewport: dict[str, int]
) -> None:
    """The practitioner manages their agenda: a place, the motive "Soins non
    programmés", slots opened on it (which are then open to the SAS), an extra required
    patient field, instructions, and the profile hidden from the directory."""
    blanc = await named_practitioner(server, "Nathalie", "Blanc", "Médecine générale", "Lyon")
    ctx, page, errors = await open_client(browser, server.url, viewport)
    await log_in(page, blanc)
    await page.click("#nav-agenda")
    await expect(page.locator("#agenda-days")).to_contain_text("Aucun créneau cette semaine")
    settings = page.locator("#agenda-settings")
    place = settings.locator("#place-form")
    await place.locator("input[name=name]").fill("Maison de santé des Pentes")
    await place.locator("input[name=address]").fill("12 rue Burdeau")
    await place.locator("input[name=postcode]").fill("69003")
    await place.locator("input[name=city]").fill("Lyon")
    await place.locator("button[type=submit]").click()
    await expect(settings.locator("#my-places")).to_contain_text(
        "Maison de santé des Pentes, 12 rue Burdeau, 69003 Lyon"
    )
    await settings.locator("#add-snp").click()
    await expect(settings.locator("#my-motives")).to_contain_text("Soins non programmés")
    form = settings.locator("#slots-form")
    await form.locator("select[name=place]").select_option(label="Maison de santé des Pentes")
    day = slot_day()
    await form.locator("input[name=day]").fill(day.strftime("%Y-%m-%d"))
    await form.locator("input[name=start]").fill(day.strftime("%H:%M"))
    await form.locator("input[name=end]").fill((day + dt.timedelta(hours=1)).strftime("%H:%M"))
    await form.locator("input[name=open_to_new_patients]").uncheck()
    await form.locator("#open-slots").click()
    slots = page.locator("#agenda-days .agenda-slot.free")
    await expect(slots).to_have_count(2)
    await expect(slots.first).to_contain_text("Soins non programmés")
    await settings.locator("#required-fields summary").click()
    await settings.locator("#required-fields input[name=email]").check()
    await settings.locator("#instructions-settings summary").click()
    await settings.locator("#instructions").fill("Merci d'apporter la carte Vitale.")
    await settings.locator("#save-instructions").click()
    await expect(settings.locator("#instructions-saved")).to_have_text("Consigne enregistrée.")
    await expect(settings.locator("#instructions")).to_have_value(
        "Merci d'apporter la carte Vitale."
    )
    profile = (await api(blanc, server, "GET", "/v1/directory/me"))["profile"]
    assert "email" in profile["required_fields"]
    assert profile["instructions"] == "Merci d'apporter la carte Vitale."
    await screenshot(page, "agenda-settings")
    # Slots not open to new patients but with "Soins non programmés": open to the SAS.
    agenda = await api(blanc, server, "GET", "/v1/agenda")
    assert [s["sas_eligible"] for s in agenda["slots"]] == [True, True]
    await settings.locator("#profile-visible").uncheck()
    await expect(settings.locator("#profile-visible")).not_to_be_checked()
    profile = (await api(blanc, server, "GET", "/v1/directory/me"))["profile"]
    assert profile["visible"] is False
    assert errors == []
    await ctx.close()
