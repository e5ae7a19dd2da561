"""Every link of every e-mail and SMS the server sends opens a page of the web client:
a full run makes each template of the outbox (the e-mail code, a guest invitation, a
regulator sign-up link, a booking's SMS and e-mail to the patient, the identity
verified by Pro Santé Connect, approved and rejected by a reviewer), then Chromium
follows each link found in the outbox (this run's and the earlier tests') and none
answers 404. The regulator's link leads to the regulator sign-up, which creates a
"Régulateur" account. At both sizes."""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser_kit import eventually, fill_sign_up, named_practitioner, open_client
from oidc_provider import OidcProvider, card
from playwright.async_api import Browser, expect
from verification_kit import PNG, email_code, psc_callback, signed_up

from clients.python import Account, Client
from harness import PASSWORD, ServerUnderTest
from server.clock import now_ms
from server.notifications import outbox_log_path

pytestmark = pytest.mark.asyncio(loop_scope="session")  # the shared browser and server

SERVER = Path(__file__).resolve().parents[2] / "server"
URL = re.compile(r"https?://[^\s\"'<>]+")


def templates_sent_to_people() -> set[str]:
    """The e-mail and SMS templates the server's code can send (read from it, so that
    a new one is covered by this test or fails it)."""
    found: set[str] = set()
    call = re.compile(r'NewNotification\(\s*"(email|sms)",[^,]+,\s*"([a-z_]+)"', re.S)
    for path in SERVER.rglob("*.py"):
        found.update(m.group(2) for m in call.finditer(path.read_text("utf-8")))
    return found


async def api(
    server: ServerUnderTest, who: Account | None, method: str, path: str, **kw: Any
) -> Any:
    headers = {"Authorization": f"Bearer {who.token}"} if who else {}
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        answer = await http.request(method, path, headers=headers, **kw)
    assert answer.status_code < 300, f"{method} {path}: {answer.text}"
    return answer.json() if answer.content else None


async def full_run(server: ServerUnderTest, provider: OidcProvider, tag: str) -> None:
    """Make the server send each of its e-mails and SMS once."""
    anne = await named_practitioner(server, "Anne", "Martin", "Pneumologie", "Lyon")
    doctor = await named_practitioner(server, "Emmanuel", "Faure", "Médecine générale", "Douai")
    # A guest invitation.
    client = Client(anne)
    await client.connect()
    try:
        room = await client.create_room("group", [], name="Staff")
        await client.invite(room.id, emails=[f"invite.{tag}@example.fr"])
    finally:
        await client.close()
    # A forgotten password: the reset code (it carries no link).
    await api(server, None, "POST", "/v1/accounts/password/forgot", json={"email": anne.email})
    # A regulator sign-up link, issued by an administrator.
    await server.store.grant_role(anne.user_id, "admin", now_ms())
    await api(server, anne, "POST", "/v1/regulator-links", json={"email": f"sas.{tag}@example.fr"})
    # A referral booked: the patient's SMS and e-mail.
    place = await api(
        server,
        doctor,
        "POST",
        "/v1/agenda/places",
        json={
            "name": "Cabinet du docteur Faure",
            "address": "4c Rue d'Auby",
            "postcode": "59500",
            "city": "Douai",
            "lat": 50.37069,
            "lon": 3.07922,
        },
    )
    motive = await api(
        server, doctor, "POST", "/v1/agenda/motives", json={"label": "Première consultation"}
    )
    start = 4_102_444_800_000 + (hash(tag) % 1000) * 3_600_000
    slots = await api(
        server,
        doctor,
        "POST",
        "/v1/agenda/slots",
        json={
            "slots": [
                {
                    "place": place["place"]["id"],
                    "starts_at": start,
                    "ends_at": start + 1_800_000,
                    "motives": [motive["motive"]["id"]],
                }
            ]
        },
    )
    patient = {
        "civility": "madame",
        "first_name": "Marie",
        "last_name": "Durand",
        "birth_name": "Martin",
        "birth_date": "21/11/1952",
        "phone": "06 45 37 26 53",
        "email": f"marie.durand.{tag}@example.fr",
    }
    await api(
        server,
        anne,
        "POST",
        "/v1/referrals",
        json={
            "slot": slots["slots"][0]["id"],
            "motive": motive["motive"]["id"],
            "patient": patient,
            "message": "Patiente adressée pour avis.",
        },
    )
    # An identity verified by Pro Santé Connect.
    number = f"{secrets.randbelow(10**9):09d}"  # an ADELI number of its own: 9 digits
    psc_user, _ = await signed_up(server, rpps=number, first_name="Hélène", last_name="Lefèvre")
    provider.card = card("0" + number, "LEFEVRE", "HELENE")
    async with httpx.AsyncClient(base_url=server.url) as browser:
        callback = await psc_callback(browser, psc_user)
        done = await browser.get(callback.removeprefix(server.url))
        assert done.json()["outcome"] == "verified", done.text
    # Identities approved and rejected by a reviewer.
    reviewer = await named_practitioner(server, "Rémi", "Relecteur", "Médecine générale", "Lyon")
    await server.store.grant_role(reviewer.user_id, "reviewer", now_ms())
    for decision in ({"decision": "approve"}, {"decision": "reject", "reason": "photo floue"}):
        applicant, _ = await signed_up(server, rpps=None)
        async with httpx.AsyncClient(base_url=server.url) as http:
            auth = {"Authorization": f"Bearer {applicant.token}"}
            for side in ("front", "selfie"):
                put = await http.put(
                    f"/v1/verification/documents/{side}",
                    content=PNG,
                    headers={**auth, "Content-Type": "image/png"},
                )
                assert put.status_code == 201, put.text
        request = await api(
            server, applicant, "POST", "/v1/verification/manual", json={"document": "passport"}
        )
        await api(
            server,
            reviewer,
            "POST",
            f"/v1/review/requests/{request['request']['id']}/decision",
            json=decision,
        )


async def outbox(server: ServerUnderTest) -> list[dict[str, Any]]:
    """Every e-mail and SMS queued or sent so far, with its data (a sent row's secrets
    are blanked in the store: the sink has them)."""
    sink = outbox_log_path(server.settings)
    sunk = {}
    if sink.exists():
        for line in sink.read_text("utf-8").splitlines():
            row = json.loads(line)
            sunk[row["id"]] = row
    out = []
    for n in await server.store.notifications():
        if n.channel not in ("email", "sms"):
            continue
        data = sunk.get(n.id, {"data": n.data})["data"]
        out.append(
            {"template": n.template, "channel": n.channel, "recipient": n.recipient, "data": data}
        )
    return out


async def test_every_link_of_the_outbox_opens_a_page(
    server: ServerUnderTest, provider: OidcProvider, browser: Browser, viewport: dict[str, int]
) -> None:
    tag = f"{viewport['width']}-{now_ms()}"
    await full_run(server, provider, tag)

    async def everything_sent() -> bool:
        return templates_sent_to_people() <= {row["template"] for row in await outbox(server)}

    assert await eventually(everything_sent), templates_sent_to_people()
    links = sorted(
        {url for row in await outbox(server) for url in URL.findall(json.dumps(row["data"]))}
    )
    kinds = {"/inscription?": 0, "/inscription-regulateur#": 0}
    for url in links:
        for kind in kinds:
            kinds[kind] += kind in url
    assert all(kinds.values()), (kinds, links)

    context, page, errors = await open_client(browser, server.url, viewport)
    for url in links:
        assert url.startswith(server.url), url  # the public URL is this server's
        await page.goto("about:blank")  # links differing by their fragment only load anew
        answer = await page.goto(url)
        assert answer is not None and answer.status == 200, url
        await expect(page.locator("#signup-form")).to_be_visible()
        text = await page.locator("#app").inner_text()
        assert "not_found" not in text and "Introuvable" not in text, url

    # The regulator's own link: the regulator sign-up, "Régulateur" at the bottom.
    sas_email = f"sas.{tag}@example.fr"
    [regulator_url] = [
        row["data"]["url"]
        for row in await outbox(server)
        if row["template"] == "regulator_link" and row["recipient"] == sas_email
    ]
    await page.goto("about:blank")
    await page.goto(regulator_url)
    await expect(page.locator("h1")).to_have_text("Créez votre compte régulateur")
    form = page.locator("#signup-form")
    await expect(form.locator("input[name=email]")).to_have_value(sas_email)
    await expect(form.locator("select[name=specialty] option").last).to_have_text("Régulateur")
    await fill_sign_up(
        page,
        specialty="Régulateur",
        practice_mode="salarie",
        first_name="Sam",
        last_name="Régul",
        postcode="75012",
        city="Paris",
        password=PASSWORD,
    )
    await form.locator("button[type=submit]").click()
    await expect(page).to_have_url(server.url + "/verification")
    regulator = await server.store.user_by_email(sas_email)
    assert regulator is not None and regulator.profession == "regulator" and regulator.verified
    await page.fill("#email-code-form input[name=code]", await email_code(server, sas_email))
    await page.click("#email-code-form button[type=submit]")
    await expect(page.locator("#new-conversation")).to_be_visible()
    assert errors == []
    await context.close()
