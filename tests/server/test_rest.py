"""REST: sign-up, log-in/out, devices, profile; every error is JSON naming the problem."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from clients.python import ServerError
from harness import PASSWORD, ServerUnderTest, connected, practitioner
from protocol.errors import ErrorCode

SIGN_UP = {
    "email": "Claire.Dubois@Example.org ",
    "password": PASSWORD,
    "first_name": "Claire",
    "last_name": "Dubois",
    "postcode": "33000",
    "city": "Bordeaux",
    "specialty": "Pédiatrie",
    "practice_mode": "salarie",
    "rpps": "10003456786",  # RPPS: 11 digits, the last its Luhn key
    "terms_version": "2025-01",
    "privacy_version": "2025-01",
}


@pytest.fixture
async def http(server: ServerUnderTest) -> Any:
    async with httpx.AsyncClient(base_url=server.url) as client:
        yield client


async def test_health(http: httpx.AsyncClient) -> None:
    assert (await http.get("/healthz")).json() == {"status": "ok"}
    assert (await http.get("/readyz")).json() == {"status": "ok"}


async def test_sign_up_log_in_log_out(http: httpx.AsyncClient) -> None:
    created = await http.post("/v1/accounts", json=SIGN_UP)
    assert created.status_code == 201
    user = created.json()["user"]
    assert user["email"] == "claire.dubois@example.org" and user["verified"] is False
    assert "password" not in str(created.json())

    login = await http.post(
        "/v1/sessions",
        json={"email": "CLAIRE.DUBOIS@example.org", "password": PASSWORD, "device_name": "Mac"},
    )
    assert login.status_code == 201
    token = login.json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    me = await http.get("/v1/me", headers=auth)
    assert me.json()["user"]["id"] == user["id"]
    devices = (await http.get("/v1/devices", headers=auth)).json()["devices"]
    assert [d["name"] for d in devices] == ["Mac"]

    # A second device, then a session for it by device_id.
    added = await http.post("/v1/devices", json={"name": "iPhone"}, headers=auth)
    assert added.status_code == 201
    second = await http.post(
        "/v1/sessions",
        json={
            "email": SIGN_UP["email"],
            "password": PASSWORD,
            "device_id": added.json()["device"]["id"],
        },
    )
    assert second.json()["device_id"] == added.json()["device"]["id"]

    assert (await http.delete("/v1/sessions/current", headers=auth)).status_code == 204
    gone = await http.get("/v1/me", headers=auth)
    assert gone.status_code == 401 and gone.json()["code"] == "unauthenticated"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"password": "short"}, "password"),
        ({"postcode": "7501"}, "postcode"),
        ({"postcode": "99000"}, "postcode"),
        ({"postcode": "96000"}, "postcode"),  # no département 96: the rule of patient forms
        ({"practice_mode": "freelance"}, "practice_mode"),
        ({"rpps": "12345"}, "rpps"),
        ({"first_name": ""}, "first_name"),
        ({"last_name": "x" * 101}, "last_name"),
        ({"city": None}, "city"),
        ({"specialty": 12}, "specialty"),
    ],
)
async def test_sign_up_errors_name_the_field(
    http: httpx.AsyncClient, change: dict[str, Any], field: str
) -> None:
    response = await http.post("/v1/accounts", json={**SIGN_UP, **change})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "bad_frame" and f"'{field}'" in body["message"]


async def test_duplicate_email_is_a_conflict(http: httpx.AsyncClient) -> None:
    assert (await http.post("/v1/accounts", json=SIGN_UP)).status_code == 201
    again = await http.post("/v1/accounts", json={**SIGN_UP, "email": "claire.dubois@EXAMPLE.org"})
    assert again.status_code == 409 and again.json()["code"] == "conflict"


@pytest.mark.parametrize(
    ("content", "status"),
    [(b"{not json", 400), (b"[1, 2]", 400), (b"x" * 70_000, 413)],
)
async def test_malformed_bodies(http: httpx.AsyncClient, content: bytes, status: int) -> None:
    response = await http.post("/v1/accounts", content=content)
    assert response.status_code == status
    assert set(response.json()) >= {"code", "message"}


async def test_wrong_password_and_unknown_email_look_the_same(http: httpx.AsyncClient) -> None:
    await http.post("/v1/accounts", json=SIGN_UP)
    wrong = await http.post(
        "/v1/sessions", json={"email": SIGN_UP["email"], "password": "wrong password!"}
    )
    unknown = await http.post(
        "/v1/sessions", json={"email": "nobody@example.org", "password": PASSWORD}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()


async def test_bearer_is_required_and_checked(http: httpx.AsyncClient) -> None:
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer forged"}):
        response = await http.get("/v1/me", headers=headers)
        assert response.status_code == 401 and response.json()["code"] == "unauthenticated"


async def test_room_list_is_shown_before_verification_but_messages_are_not(
    server: ServerUnderTest, http: httpx.AsyncClient
) -> None:
    owner = await practitioner(server.url, server.store)
    pending = await practitioner(server.url, server.store, verified=False)
    auth = {"Authorization": f"Bearer {pending.token}"}
    async with await connected(owner) as client:
        room = await client.create_room("group", [pending.user_id], name="RCP")
        await client.send(room.id, b"ciphertext")
    response = await http.get("/v1/rooms", headers=auth)
    assert response.status_code == 200
    assert [(r["id"], r["name"], r["unread"]) for r in response.json()["rooms"]] == [
        (room.id, "RCP", 2)  # the room's creation event and the message
    ]
    async with await connected(pending) as client:
        with pytest.raises(ServerError) as refused:
            await client.sync(room.id, 0)
        assert refused.value.code == ErrorCode.IDENTITY_UNVERIFIED


async def test_unknown_route_and_method_are_json(http: httpx.AsyncClient) -> None:
    missing = await http.get("/v1/nothing")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    wrong = await http.put("/v1/accounts", json={})
    assert wrong.status_code == 405 and "message" in wrong.json()
