"""Signing up with Pro Santé Connect ("Inscription rapide"): the card authenticates
the practitioner before the account exists, pre-fills the form, and the account made
with it is verified, bound to the card's number, and still confirms its address by
the e-mail code (guest invitations wait for that code)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from oidc_provider import OidcProvider, card
from verification_kit import PUBLIC_URL, email_code, form, node_with_psc

from clients.python import log_in
from harness import PASSWORD, ServerUnderTest, connected, practitioner

RPPS = "10003456786"


@pytest.fixture
async def psc(tmp_path: Path) -> AsyncIterator[tuple[ServerUnderTest, OidcProvider]]:
    async with node_with_psc(tmp_path) as pair:
        pair[1].card = card("8" + RPPS, "LEFEVRE-DURAND", "HELENE MARIE")
        yield pair


async def _card_login(url: str) -> str:
    async with httpx.AsyncClient() as at_provider:
        answer = await at_provider.get(url)
    assert answer.status_code == 302, answer.text
    location: str = answer.headers["location"]
    assert location.startswith(PUBLIC_URL + "/v1/verification/psc/callback?")
    return location.removeprefix(PUBLIC_URL)


async def _signup_flow(http: httpx.AsyncClient) -> httpx.Response:
    """Start without an account, authenticate with the card, come back."""
    started = await http.post("/v1/accounts/psc/start")
    assert started.status_code == 200, started.text
    state = parse_qs(urlsplit(started.json()["authorization_url"]).query)["state"][0]
    assert state.startswith("signup.")
    return await http.get(await _card_login(started.json()["authorization_url"]))


def _psc_form(**overrides: Any) -> dict[str, Any]:
    body = form(first_name="Hélène", last_name="Lefèvre-Durand", pro_sante_connect=True)
    del body["rpps"]  # the card's
    body.update(overrides)
    return body


async def test_the_card_prefills_and_verifies_the_new_account(
    psc: tuple[ServerUnderTest, OidcProvider],
) -> None:
    srv, _ = psc
    async with httpx.AsyncClient(base_url=srv.url) as browser:
        back = await _signup_flow(browser)
        assert back.status_code == 200, back.text
        assert back.json()["outcome"] == "signup"
        prefill = {"first_name": "Helene", "last_name": "Lefevre-Durand", "rpps": RPPS}
        assert back.json()["card"] == prefill
        cookie = back.headers["set-cookie"]
        assert "confrere_psc_signup=" in cookie and "httponly" in cookie.lower()
        assert "path=/v1/accounts" in cookie.lower() and "samesite=strict" in cookie.lower()
        shown = await browser.get("/v1/accounts/psc")
        assert shown.status_code == 200 and {**shown.json(), "expires_at": 0} == {
            **prefill,
            "expires_at": 0,
        }

        body = _psc_form()
        created = await browser.post("/v1/accounts", json=body)
        assert created.status_code == 201, created.text
        user = created.json()["user"]
        assert (user["first_name"], user["last_name"]) == ("Hélène", "Lefèvre-Durand")
        assert user["rpps"] == RPPS and user["verified"] is True
        assert user["email_confirmed"] is False  # the guide: the address is still checked
        assert "confrere_psc_signup=" in created.headers["set-cookie"]  # deleted
        gone = await browser.get("/v1/accounts/psc")
        assert gone.status_code == 404 and gone.json()["reason"] == "psc_ticket_missing"
    stored = await srv.store.user_by_email(body["email"])
    assert stored is not None and stored.verified and stored.rpps == RPPS
    assert await email_code(srv, body["email"])  # the code was sent as for any sign-up


async def test_one_card_makes_one_account(psc: tuple[ServerUnderTest, OidcProvider]) -> None:
    srv, _ = psc
    async with httpx.AsyncClient(base_url=srv.url) as browser:
        await _signup_flow(browser)
        kept = browser.cookies.get("confrere_psc_signup")
        assert (await browser.post("/v1/accounts", json=_psc_form())).status_code == 201
        browser.cookies.set("confrere_psc_signup", kept or "", path="/v1/accounts")
        again = await browser.post("/v1/accounts", json=_psc_form())
        assert again.status_code == 409, again.text
        assert again.json()["reason"] == "number_taken"
        # A fresh flow with the same card is refused the same way.
        await _signup_flow(browser)
        third = await browser.post("/v1/accounts", json=_psc_form())
        assert third.status_code == 409 and third.json()["reason"] == "number_taken"


async def test_names_and_number_must_be_the_cards(
    psc: tuple[ServerUnderTest, OidcProvider],
) -> None:
    srv, _ = psc
    async with httpx.AsyncClient(base_url=srv.url) as browser:
        await _signup_flow(browser)
        for overrides, field in (
            ({"last_name": "Martin"}, "last_name"),
            ({"first_name": "Claire"}, "first_name"),
            ({"rpps": "10000000009"}, "rpps"),
        ):
            refused = await browser.post("/v1/accounts", json=_psc_form(**overrides))
            assert refused.status_code == 400, refused.text
            assert refused.json()["field"] == field
            assert refused.json()["reason"] == "card_mismatch"
        for wrong in ("yes", 1):
            refused = await browser.post("/v1/accounts", json=_psc_form(pro_sante_connect=wrong))
            assert refused.status_code == 400 and refused.json()["field"] == "pro_sante_connect"
    # Another browser (no ticket) cannot claim the card's identity.
    async with httpx.AsyncClient(base_url=srv.url) as other:
        refused = await other.post("/v1/accounts", json=_psc_form())
        assert refused.status_code == 400
        assert refused.json()["reason"] == "psc_ticket_missing"
    assert await srv.store.user_by_email(_psc_form()["email"]) is None


async def test_a_browser_lands_on_the_sign_up_page(
    psc: tuple[ServerUnderTest, OidcProvider],
) -> None:
    srv, _ = psc
    html = {"Accept": "text/html"}
    async with httpx.AsyncClient(base_url=srv.url) as browser:
        started = await browser.post("/v1/accounts/psc/start")
        callback = await _card_login(started.json()["authorization_url"])
        async with httpx.AsyncClient(base_url=srv.url) as thief:  # no binding cookie
            refused = await thief.get(callback, headers=html)
        assert refused.status_code == 303
        assert refused.headers["location"].startswith(
            "/inscription#verification=error&reason=psc_other_browser&"
        )
        back = await browser.get(callback, headers=html)
        assert back.status_code == 303
        assert back.headers["location"] == "/inscription#verification=signup"
        assert (await browser.get("/v1/accounts/psc")).status_code == 200
        # A made-up sign-up state is refused (signed by the server, or nothing).
        state = parse_qs(urlsplit(callback).query)["state"][0]
        forged = state[:-4] + ("AAAA" if not state.endswith("AAAA") else "BBBB")
        browser.cookies.clear()
        answer = await browser.get(
            "/v1/verification/psc/callback", params={"state": forged, "code": "x"}
        )
        assert answer.status_code == 403  # not this browser's either


async def test_guest_invitations_wait_for_the_email_code(
    psc: tuple[ServerUnderTest, OidcProvider],
) -> None:
    srv, _ = psc
    inviter = await connected(await practitioner(srv.url, srv.store))
    body = _psc_form()
    try:
        room = await inviter.create_room("group", [])
        await inviter.invite(room.id, emails=[body["email"]])
        async with httpx.AsyncClient(base_url=srv.url) as browser:
            await _signup_flow(browser)
            assert (await browser.post("/v1/accounts", json=body)).status_code == 201
        account = await log_in(srv.url, body["email"], PASSWORD, device_name="web")
        assert await srv.store.membership(room.id, account.user_id) is None
        async with httpx.AsyncClient(base_url=srv.url) as http:
            confirmed = await http.post(
                "/v1/accounts/email/confirm",
                json={"code": await email_code(srv, body["email"])},
                headers={"Authorization": f"Bearer {account.token}"},
            )
            assert confirmed.status_code == 200, confirmed.text
        assert await srv.store.membership(room.id, account.user_id) is not None
    finally:
        await inviter.close()


async def test_sign_up_start_needs_the_configuration(server: ServerUnderTest) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        off = await http.post("/v1/accounts/psc/start")
        assert off.status_code == 503 and off.json()["reason"] == "psc_not_configured"
        assert (await http.get("/v1/accounts/form")).json()["psc_available"] is False
