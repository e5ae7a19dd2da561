"""The account lifecycle over REST, on SQLite and PostgreSQL: a forgotten password reset
by e-mail code (rate-limited, every session revoked and its connections closed), a
password change, one's sessions listed and revoked one by one or all but this one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from raw_ws import closed_with, raw_connection
from verification_kit import email_code

from clients.python import Account, log_in
from clients.python.errors import ServerError
from harness import PASSWORD, ServerUnderTest, practitioner, server_on
from protocol import CloseCode
from protocol.frames import Ping, Pong
from storage.audit import AuditQuery

NEW_PASSWORD = "une nouvelle phrase de passe, bien plus longue"


@pytest.fixture(params=["sqlite", "postgres"])
async def srv(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ServerUnderTest]:
    async with server_on(
        request.param, request, tmp_path, outbox_log=str(tmp_path / "outbox.jsonl")
    ) as server:
        yield server


async def call(
    srv: ServerUnderTest, method: str, path: str, token: str | None = None, **kw: Any
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=srv.url, timeout=30) as http:
        return await http.request(method, path, headers=headers, **kw)


async def reset_code(srv: ServerUnderTest, address: str) -> str:
    r = await call(srv, "POST", "/v1/accounts/password/forgot", json={"email": address})
    assert r.status_code == 202, r.text
    return await email_code(srv, address, "password_reset")


def refused(r: httpx.Response, field: str, reason: str) -> None:
    assert r.status_code == 400, r.text
    body = r.json()
    assert (body["field"], body["reason"]) == (field, reason), body


async def test_a_forgotten_password_is_reset_and_every_session_revoked(
    srv: ServerUnderTest,
) -> None:
    alice = await practitioner(srv.url, srv.store)
    phone = await log_in(srv.url, alice.email, PASSWORD, device_name="phone")
    # An unknown address gets the same answer, and no e-mail.
    r = await call(srv, "POST", "/v1/accounts/password/forgot", json={"email": "x@nowhere.fr"})
    assert r.status_code == 202 and set(r.json()) == {"expires_at"}
    assert await srv.store.notifications("email", "x@nowhere.fr") == []
    code = await reset_code(srv, alice.email)
    wrong = "000000" if code != "000000" else "111111"
    form = {"email": alice.email, "code": code, "password": NEW_PASSWORD}
    path = "/v1/accounts/password/reset"
    refused(await call(srv, "POST", path, json={**form, "code": wrong}), "code", "code_wrong")
    refused(await call(srv, "POST", path, json={**form, "code": "12"}), "code", "code_malformed")
    refused(
        await call(srv, "POST", path, json={**form, "password": "motdepasse123"}),
        "password",
        "password_common",
    )
    refused(
        await call(srv, "POST", path, json={**form, "email": "x@nowhere.fr"}), "code", "code_none"
    )
    # The sign-up's confirmation code is no reset code (purpose-bound).
    signup_code = await email_code(srv, alice.email)
    if signup_code != code:
        r = await call(srv, "POST", path, json={**form, "code": signup_code})
        refused(r, "code", "code_wrong")
    async with raw_connection(srv.url, alice) as laptop_ws, raw_connection(srv.url, phone) as ws:
        r = await call(srv, "POST", path, json=form)
        assert r.status_code == 204, r.text
        assert await closed_with(laptop_ws) == CloseCode.UNAUTHENTICATED
        assert await closed_with(ws) == CloseCode.UNAUTHENTICATED
    for token in (alice.token, phone.token):
        assert (await call(srv, "GET", "/v1/me", token)).status_code == 401
    with pytest.raises(ServerError):
        await log_in(srv.url, alice.email, PASSWORD)
    again = await log_in(srv.url, alice.email, NEW_PASSWORD)
    assert again.user_id == alice.user_id
    refused(await call(srv, "POST", path, json=form), "code", "code_none")  # spent


async def test_reset_codes_are_rate_limited_and_attempts_counted(srv: ServerUnderTest) -> None:
    alice = await practitioner(srv.url, srv.store)
    path = "/v1/accounts/password/forgot"
    for _ in range(3):
        assert (await call(srv, "POST", path, json={"email": alice.email})).status_code == 202
    r = await call(srv, "POST", path, json={"email": alice.email})
    assert r.status_code == 429 and r.json()["code"] == "rate_limited"
    code = await email_code(srv, alice.email, "password_reset")
    wrong = "000000" if code != "000000" else "111111"
    form = {"email": alice.email, "code": wrong, "password": NEW_PASSWORD}
    for _ in range(5):
        refused(
            await call(srv, "POST", "/v1/accounts/password/reset", json=form), "code", "code_wrong"
        )
    form["code"] = code  # right, but too late
    refused(
        await call(srv, "POST", "/v1/accounts/password/reset", json=form), "code", "code_exhausted"
    )


async def test_a_password_change_keeps_this_session_only(srv: ServerUnderTest) -> None:
    alice = await practitioner(srv.url, srv.store)
    phone = await log_in(srv.url, alice.email, PASSWORD, device_name="phone")
    path = "/v1/accounts/password"
    body = {"password": "not my password", "new_password": NEW_PASSWORD}
    refused(await call(srv, "POST", path, alice.token, json=body), "password", "password_wrong")
    body = {"password": PASSWORD, "new_password": "azerty1234"}
    refused(
        await call(srv, "POST", path, alice.token, json=body), "new_password", "password_common"
    )
    assert (await call(srv, "POST", path, json=body)).status_code == 401
    async with raw_connection(srv.url, phone) as phone_ws, raw_connection(srv.url, alice) as ws:
        body = {"password": PASSWORD, "new_password": NEW_PASSWORD}
        assert (await call(srv, "POST", path, alice.token, json=body)).status_code == 204
        assert await closed_with(phone_ws) == CloseCode.UNAUTHENTICATED
        await ws.send(Ping(3))
        assert isinstance(await ws.reply_to(3), Pong)  # this session lives on
    assert (await call(srv, "GET", "/v1/me", alice.token)).status_code == 200
    assert (await call(srv, "GET", "/v1/me", phone.token)).status_code == 401
    await log_in(srv.url, alice.email, NEW_PASSWORD)


async def sessions(srv: ServerUnderTest, account: Account) -> list[dict[str, Any]]:
    r = await call(srv, "GET", "/v1/sessions", account.token)
    assert r.status_code == 200, r.text
    found: list[dict[str, Any]] = r.json()["sessions"]
    return found


async def test_sessions_are_listed_and_revoked(srv: ServerUnderTest) -> None:
    alice = await practitioner(srv.url, srv.store, device_name="Cabinet")
    phone = await log_in(srv.url, alice.email, PASSWORD, device_name="Téléphone")
    tablet = await log_in(srv.url, alice.email, PASSWORD, device_name="Tablette")
    bob = await practitioner(srv.url, srv.store)
    listed = await sessions(srv, alice)
    assert [(s["device_name"], s["current"]) for s in listed] == [
        ("Cabinet", True),
        ("Téléphone", False),
        ("Tablette", False),
    ]
    assert all(len(s["id"]) == 32 and s["expires_at"] > s["created_at"] for s in listed)
    phone_id = listed[1]["id"]
    # Another account's session, or no session: 404, and nothing revoked.
    bob_id = (await sessions(srv, bob))[0]["id"]
    for wrong in (bob_id, "0" * 32, "nope"):
        r = await call(srv, "DELETE", f"/v1/sessions/{wrong}", alice.token)
        assert r.status_code == 404, r.text
    assert (await call(srv, "GET", "/v1/me", bob.token)).status_code == 200
    async with raw_connection(srv.url, phone) as phone_ws, raw_connection(srv.url, tablet) as tab:
        r = await call(srv, "DELETE", f"/v1/sessions/{phone_id}", alice.token)
        assert r.status_code == 200 and r.json() == {"revoked": 1}
        assert await closed_with(phone_ws) == CloseCode.UNAUTHENTICATED
        await tab.send(Ping(5))
        assert isinstance(await tab.reply_to(5), Pong)
        r = await call(srv, "DELETE", "/v1/sessions/others", alice.token)
        assert r.json() == {"revoked": 1}
        assert await closed_with(tab) == CloseCode.UNAUTHENTICATED
    assert [s["device_name"] for s in await sessions(srv, alice)] == ["Cabinet"]


async def test_export_then_delete_the_account(srv: ServerUnderTest) -> None:
    alice = await practitioner(srv.url, srv.store, device_name="Cabinet")
    bob = await practitioner(srv.url, srv.store)
    phone = await log_in(srv.url, alice.email, PASSWORD, device_name="Téléphone")
    room, _ = await srv.store.create_room("group", alice.user_id, [bob.user_id], "Staff", None, 1)
    r = await call(srv, "GET", "/v1/accounts/me/export", alice.token)
    assert r.status_code == 200, r.text
    assert "attachment" in r.headers["content-disposition"]
    data = r.json()
    assert data["account"]["email"] == alice.email and data["account"]["created_at"] > 0
    assert {c["document"] for c in data["consents"]} == {"terms", "privacy"}
    assert [d["name"] for d in data["devices"]] == ["Cabinet", "Téléphone"]
    assert [s["current"] for s in data["sessions"]] == [True, False]
    assert data["rooms"] == [{"id": room.id, "kind": "group", "name": "Staff", "role": "owner"}]
    assert "chiffrés de bout en bout" in data["messages"]
    path = "/v1/accounts/me/delete"
    refused(
        await call(srv, "POST", path, alice.token, json={"password": "pas le bon"}),
        "password",
        "password_wrong",
    )
    async with raw_connection(srv.url, phone) as phone_ws:
        r = await call(srv, "POST", path, alice.token, json={"password": PASSWORD})
        assert r.status_code == 204, r.text
        assert await closed_with(phone_ws) == CloseCode.UNAUTHENTICATED
    assert (await call(srv, "GET", "/v1/me", alice.token)).status_code == 401
    with pytest.raises(ServerError):
        await log_in(srv.url, alice.email, PASSWORD)
    entries = await srv.store.audit_entries(AuditQuery(action="account.deleted"))
    assert [(e.actor, e.target) for e in entries] == [(alice.user_id, alice.user_id)]
    # Bob's record of the conversation stays; the member is "Compte supprimé".
    r = await call(srv, "GET", f"/v1/profiles?users={alice.user_id}", bob.token)
    assert r.status_code == 200, r.text
    assert "Nom" not in r.text and alice.email not in r.text
