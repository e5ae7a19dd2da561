"""Sign-up (fields, consents, password rules, RPPS/ADELI), the e-mail code, log-in rate
limits and regulator sign-up links, over HTTP against a real node."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest
from verification_kit import email_code, form, outbox_mails, signed_up

from harness import PASSWORD, ServerUnderTest
from server.clock import now_ms
from server.verification import codes
from storage.verification import Consent, EmailCode


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def http(server: ServerUnderTest) -> Any:
    async with httpx.AsyncClient(base_url=server.url) as client:
        yield client


async def test_sign_up_records_consents_and_sends_a_code(
    server: ServerUnderTest, http: httpx.AsyncClient
) -> None:
    offered = (await http.get("/v1/accounts/form")).json()
    assert "Médecine générale" in offered["specialties"]
    assert "Régulateur" not in offered["specialties"]
    body = form()
    created = await http.post("/v1/accounts", json=body)
    assert created.status_code == 201
    user = created.json()["user"]
    assert user["email_confirmed"] is False and user["verified"] is False
    assert user["profession"] == "practitioner" and user["rpps"] == "10003456786"
    consents = await server.store.consents_of(user["id"])
    assert [c for c, _ in consents] == [Consent("privacy", "2025-01"), Consent("terms", "2025-01")]
    code = await email_code(server, body["email"])
    assert len(code) == 6 and code.isdigit()
    assert code not in str(await server.store.consents_of(user["id"]))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"terms_version": None}, "terms_version"),
        ({"privacy_version": "2019-01"}, "privacy_version"),
        ({"password": "motdepasse123"}, "password"),  # breached-password list
        ({"password": "Mot-de-Passe"}, "password"),
        ({"password": "aaaaaaaaaaaa"}, "password"),
        ({"password": "0123456789"}, "password"),
        ({"password": "Lefevre-Durand1"}, "password"),  # the user's own name
        ({"rpps": "10003456789"}, "rpps"),  # wrong Luhn key
        ({"rpps": "1234"}, "rpps"),
        ({"rpps": "12345678A"}, "rpps"),
        ({"specialty": "Astrologie"}, "specialty"),
        ({"specialty": "Régulateur"}, "specialty"),  # only through a regulator link
    ],
)
async def test_sign_up_refusals_name_the_field(
    server: ServerUnderTest, http: httpx.AsyncClient, change: dict[str, Any], field: str
) -> None:
    body = form(**change)
    response = await http.post("/v1/accounts", json=body)
    assert response.status_code == 400, response.text
    assert f"'{field}'" in response.json()["message"]
    assert await server.store.user_by_email(body["email"]) is None  # nothing written


@pytest.mark.parametrize(
    "address", ["dr\u200b.martin@example.org", "dr.martin@exa\u0000mple.org", "\u202eabc@x.org"]
)
async def test_addresses_with_invisible_characters_are_refused(
    http: httpx.AsyncClient, address: str
) -> None:
    response = await http.post("/v1/accounts", json=form(email=address))
    assert response.status_code == 400 and "'email'" in response.json()["message"]


async def test_addresses_are_stored_in_nfc(
    server: ServerUnderTest, http: httpx.AsyncClient
) -> None:
    decomposed = "he\u0301le\u0300ne@example.org"  # é, è as letter + combining accent
    created = await http.post("/v1/accounts", json=form(email=decomposed.upper()))
    assert created.status_code == 201, created.text
    assert created.json()["user"]["email"] == "h\u00e9l\u00e8ne@example.org"
    again = await http.post("/v1/accounts", json=form(email="h\u00e9l\u00e8ne@example.org"))
    assert again.status_code == 409  # the same address, however it was typed


async def test_adeli_number_is_accepted(http: httpx.AsyncClient) -> None:
    response = await http.post("/v1/accounts", json=form(rpps="751234567"))
    assert response.status_code == 201 and response.json()["user"]["rpps"] == "751234567"


async def test_email_code_confirms_once(server: ServerUnderTest) -> None:
    account, body = await signed_up(server, confirm=False)
    code = await email_code(server, body["email"])
    async with httpx.AsyncClient(base_url=server.url) as http:
        wrong = "000000" if code != "000000" else "111111"
        refused = await http.post(
            "/v1/accounts/email/confirm", json={"code": wrong}, headers=_auth(account.token)
        )
        assert refused.status_code == 400 and "'code'" in refused.json()["message"]
        for bad in ("12345", "abcdef", 123456, None):
            malformed = await http.post(
                "/v1/accounts/email/confirm", json={"code": bad}, headers=_auth(account.token)
            )
            assert malformed.status_code == 400
        ok = await http.post(
            "/v1/accounts/email/confirm", json={"code": code}, headers=_auth(account.token)
        )
        assert ok.status_code == 200 and ok.json()["user"]["email_confirmed"] is True
        again = await http.post(
            "/v1/accounts/email/confirm", json={"code": code}, headers=_auth(account.token)
        )
        assert again.status_code == 409
    confirmed = await server.store.user_by_id(account.user_id)
    assert confirmed is not None and confirmed.email_confirmed


async def test_code_attempts_are_limited_and_resend_voids_the_old_code(
    server: ServerUnderTest,
) -> None:
    account, body = await signed_up(server, confirm=False)
    first = await email_code(server, body["email"])
    wrong = "000000" if first != "000000" else "111111"
    async with httpx.AsyncClient(base_url=server.url) as http:
        for _ in range(codes.MAX_ATTEMPTS):
            r = await http.post(
                "/v1/accounts/email/confirm", json={"code": wrong}, headers=_auth(account.token)
            )
            assert "is not the code sent" in r.json()["message"]
        # Now even the right code is refused: the code is spent.
        r = await http.post(
            "/v1/accounts/email/confirm", json={"code": first}, headers=_auth(account.token)
        )
        assert r.status_code == 400 and "too many" in r.json()["message"]

        resent = await http.post("/v1/accounts/email/resend", headers=_auth(account.token))
        assert resent.status_code == 202
        second = await email_code(server, body["email"])
        assert len(await outbox_mails(server, body["email"], "email_code")) == 2
        if second != first:
            old = await http.post(
                "/v1/accounts/email/confirm", json={"code": first}, headers=_auth(account.token)
            )
            assert old.status_code == 400
        ok = await http.post(
            "/v1/accounts/email/confirm", json={"code": second}, headers=_auth(account.token)
        )
        assert ok.status_code == 200

        # Resends are rate-limited (3 at once, then one a minute).
        other, _ = await signed_up(server, confirm=False)
        statuses = [
            (await http.post("/v1/accounts/email/resend", headers=_auth(other.token))).status_code
            for _ in range(4)
        ]
        assert statuses == [202, 202, 202, 429]


async def test_expired_code_is_refused(server: ServerUnderTest) -> None:
    account, body = await signed_up(server, confirm=False)
    key = server.services.server_key.key
    # A code whose time ran out (written as the resend route would, 16 minutes ago).
    past = now_ms() - 60_000
    hashed = codes.code_hash(key, body["email"], "424242")
    await server.store.replace_email_code(
        account.user_id, EmailCode(body["email"], hashed, past), [], past
    )
    async with httpx.AsyncClient(base_url=server.url) as http:
        r = await http.post(
            "/v1/accounts/email/confirm", json={"code": "424242"}, headers=_auth(account.token)
        )
    assert r.status_code == 400 and "expired" in r.json()["message"]


async def test_log_in_is_rate_limited_per_account(server: ServerUnderTest) -> None:
    _, body = await signed_up(server)
    async with httpx.AsyncClient(base_url=server.url) as http:
        statuses = []
        for _ in range(11):
            r = await http.post(
                "/v1/sessions", json={"email": body["email"], "password": "not the password!"}
            )
            statuses.append(r.status_code)
        assert statuses == [401] * 10 + [429]
        limited = await http.post(
            "/v1/sessions", json={"email": body["email"], "password": PASSWORD}
        )
        assert limited.status_code == 429 and limited.json()["retry_after"] > 0
        assert "Retry-After" in limited.headers
    # The practitioner, from another address, is not locked out by that third party.
    elsewhere = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with httpx.AsyncClient(base_url=server.url, transport=elsewhere) as own:
        mine = await own.post("/v1/sessions", json={"email": body["email"], "password": PASSWORD})
        assert mine.status_code == 201, mine.text
    async with httpx.AsyncClient(base_url=server.url) as http:
        # Another account from the same address is not locked out by this one.
        _, other = await signed_up(server)
        ok = await http.post("/v1/sessions", json={"email": other["email"], "password": PASSWORD})
        assert ok.status_code == 201


async def test_log_in_failures_are_rate_limited_per_address(server: ServerUnderTest) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        statuses = [
            (
                await http.post(
                    "/v1/sessions", json={"email": f"nobody{i}@example.org", "password": "x" * 12}
                )
            ).status_code
            for i in range(51)
        ]
    assert statuses[:50] == [401] * 50 and statuses[50] == 429


async def test_regulator_sign_up_link(server: ServerUnderTest) -> None:
    admin, _ = await signed_up(server)
    await server.store.grant_role(admin.user_id, "admin", now_ms())
    practitioner, pro = await signed_up(server)
    async with httpx.AsyncClient(base_url=server.url) as http:
        # Only admins issue links, and a regulator needs an address of their own.
        refused = await http.post(
            "/v1/regulator-links",
            json={"email": "sas@example.org"},
            headers=_auth(practitioner.token),
        )
        assert refused.status_code == 403
        taken = await http.post(
            "/v1/regulator-links", json={"email": pro["email"]}, headers=_auth(admin.token)
        )
        assert taken.status_code == 409

        issued = await http.post(
            "/v1/regulator-links",
            json={"email": "regulateur.sas@example.org"},
            headers=_auth(admin.token),
        )
        assert issued.status_code == 201
        assert set(issued.json()) == {"id", "expires_at"}  # the link goes to the address only
        mails = await outbox_mails(server, "regulateur.sas@example.org", "regulator_link")
        token = mails[0]["url"].split("#", 1)[1]

        body = form(
            email="regulateur.sas@example.org",
            specialty="Régulateur",
            rpps=None,
            regulator_link=token,
        )
        for change, field in (
            ({"email": "autre@example.org"}, "email"),
            ({"specialty": "Médecine générale"}, "specialty"),
            ({"regulator_link": token[:-4] + "AAAA"}, "regulator_link"),
        ):
            bad = await http.post("/v1/accounts", json={**body, **change})
            assert bad.status_code == 400 and f"'{field}'" in bad.json()["message"]
        created = await http.post("/v1/accounts", json=body)
        assert created.status_code == 201, created.text
        user = created.json()["user"]
        assert user["profession"] == "regulator" and user["specialty"] == "Régulateur"
        # The role comes with the link; the address is proved by the e-mail code only.
        assert not user["email_confirmed"] and user["verified"]
        assert "regulator" in await server.store.roles_of(user["id"])
        assert await email_code(server, "regulateur.sas@example.org")
        # One account per link: the address is taken, and the link is spent.
        again = await http.post("/v1/accounts", json=body)
        assert again.status_code == 409


async def test_expired_regulator_link_is_refused(server: ServerUnderTest) -> None:
    from server.verification import links

    token, _ = links.sign_link(server.services.server_key.key, "late@example.org", now_ms() - 1)
    async with httpx.AsyncClient(base_url=server.url) as http:
        body = form(
            email="late@example.org", specialty="Régulateur", rpps=None, regulator_link=token
        )
        r = await http.post("/v1/accounts", json=body)
    assert r.status_code == 400 and "expired" in r.json()["message"]


async def test_an_unconfirmed_account_does_not_squat_its_address(tmp_path: Any) -> None:
    from harness import running_server, settings_for

    settings = settings_for(tmp_path, unconfirmed_account_ttl_s=0)
    async with running_server(settings) as srv, httpx.AsyncClient(base_url=srv.url) as http:
        squatter = (await http.post("/v1/accounts", json=form(email="dr.x@example.org"))).json()
        owner = await http.post("/v1/accounts", json=form(email="dr.x@example.org"))
        assert owner.status_code == 201, owner.text
        assert owner.json()["user"]["id"] != squatter["user"]["id"]
        taken = await srv.store.user_by_email("dr.x@example.org")
        assert taken is not None and taken.id == owner.json()["user"]["id"]
        code = await email_code(srv, "dr.x@example.org")
        account = await http.post(
            "/v1/sessions", json={"email": "dr.x@example.org", "password": PASSWORD}
        )
        confirmed = await http.post(
            "/v1/accounts/email/confirm",
            json={"code": code},
            headers=_auth(account.json()["token"]),
        )
        assert confirmed.status_code == 200, confirmed.text
        # Confirmed: never replaced.
        again = await http.post("/v1/accounts", json=form(email="dr.x@example.org"))
        assert again.status_code == 409


async def test_sign_up_is_rate_limited_per_address(tmp_path: Any) -> None:
    from harness import running_server, settings_for

    settings = settings_for(tmp_path, signups_per_hour=3)
    async with running_server(settings) as srv, httpx.AsyncClient(base_url=srv.url) as http:
        statuses = [(await http.post("/v1/accounts", json=form())).status_code for _ in range(4)]
    assert statuses == [201, 201, 201, 429]


async def test_attempts_are_logged_without_secrets(
    server: ServerUnderTest, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO")
    account, body = await signed_up(server, confirm=False)
    code = await email_code(server, body["email"])
    wrong = "000000" if code != "000000" else "111111"
    async with httpx.AsyncClient(base_url=server.url) as http:
        await http.post(
            "/v1/accounts/email/confirm", json={"code": wrong}, headers=_auth(account.token)
        )
        await http.post("/v1/sessions", json={"email": body["email"], "password": "wrong-secret!"})
        await http.post("/v1/sessions", json={"email": "ghost@example.org", "password": "x" * 10})
    assert "refused" in caplog.text  # the attempts are there...
    for secret in (code, wrong, "wrong-secret!", body["email"], "ghost@example.org"):
        assert secret not in caplog.text  # ...their secrets and addresses are not
    assert account.token not in caplog.text
    # Nor a plain hash of an address, which anyone could compute from a guess.
    assert hashlib.sha256(b"ghost@example.org").hexdigest()[:12] not in caplog.text
