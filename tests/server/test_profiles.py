"""Who is who (``GET /v1/profiles``): a user's card is shown to themselves, to people
who share a room with them, and to anyone only while their directory profile is
listed; everyone else learns nothing, not even whether the id exists. The SDK's
``Profiles`` caches the answers and batches its requests."""

from __future__ import annotations

from typing import Any

import httpx

from clients.python import Account, Profiles
from harness import ServerUnderTest, connected, practitioner


async def _cards(srv: ServerUnderTest, viewer: Account, *ids: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=srv.url) as http:
        answer = await http.get(
            "/v1/profiles",
            params={"users": ",".join(ids)},
            headers={"Authorization": f"Bearer {viewer.token}"},
        )
    assert answer.status_code == 200, answer.text
    return {c["user"]: c for c in answer.json()["profiles"]}


async def _list_in_directory(srv: ServerUnderTest, account: Account, visible: bool) -> None:
    async with httpx.AsyncClient(base_url=srv.url) as http:
        auth = {"Authorization": f"Bearer {account.token}"}
        assert (await http.get("/v1/directory/me", headers=auth)).status_code == 200
        changed = await http.patch("/v1/directory/me", json={"visible": visible}, headers=auth)
        assert changed.status_code == 200, changed.text


async def test_cards_follow_rooms_and_the_directory(server: ServerUnderTest) -> None:
    anne = await practitioner(server.url, server.store)
    paul = await practitioner(server.url, server.store)
    outsider = await practitioner(server.url, server.store)
    unverified = await practitioner(server.url, server.store, verified=False)

    # Nobody is listed yet and nobody shares a room: only one's own card.
    seen = await _cards(server, anne, anne.user_id, paul.user_id, "unknown-id")
    assert set(seen) == {anne.user_id}
    assert seen[anne.user_id]["first_name"].startswith("Prénom")

    # A shared room shows both sides to each other, and to nobody else.
    client = await connected(anne)
    try:
        room = await client.create_room("group", [paul.user_id, unverified.user_id])
        card = (await _cards(server, anne, paul.user_id))[paul.user_id]
        assert card["specialty"] == "Médecine générale" and card["verified"] is True
        assert card["profession"] == "practitioner" and card["directory"] is None
        assert set(await _cards(server, paul, anne.user_id)) == {anne.user_id}
        # An unverified member sees and is seen too (no badge): they share the room.
        both = await _cards(server, unverified, anne.user_id, paul.user_id)
        assert set(both) == {anne.user_id, paul.user_id}
        assert (await _cards(server, anne, unverified.user_id))[unverified.user_id][
            "verified"
        ] is False
        assert await _cards(server, outsider, anne.user_id, paul.user_id) == {}

        # Listed in the directory: anyone may see the card, with its public parts.
        await _list_in_directory(server, paul, True)
        listed = (await _cards(server, outsider, paul.user_id))[paul.user_id]
        assert listed["directory"] is not None and listed["directory"]["profile"]
        assert set(listed["directory"]) == {"profile", "organisations", "places"}
        # Hidden again: only the room's members still see it, without directory parts.
        await _list_in_directory(server, paul, False)
        assert await _cards(server, outsider, paul.user_id) == {}
        assert (await _cards(server, anne, paul.user_id))[paul.user_id]["directory"] is None

        # Leaving the room (here, being removed) ends it.
        await client.remove(room.id, unverified.user_id)
        assert await _cards(server, anne, unverified.user_id) == {}
        assert await _cards(server, unverified, anne.user_id) == {}
    finally:
        await client.close()


async def test_bad_requests_name_the_field(server: ServerUnderTest) -> None:
    anne = await practitioner(server.url, server.store)
    async with httpx.AsyncClient(base_url=server.url) as http:
        auth = {"Authorization": f"Bearer {anne.token}"}
        for users in ("", ",", "a b", "x" * 65, ",".join(f"id{i}" for i in range(101))):
            answer = await http.get("/v1/profiles", params={"users": users}, headers=auth)
            assert answer.status_code == 400, users
            assert answer.json()["field"] == "users"
        assert (await http.get("/v1/profiles", params={"users": anne.user_id})).status_code == 401


async def test_the_sdk_caches_and_batches(server: ServerUnderTest) -> None:
    anne = await practitioner(server.url, server.store)
    colleagues = [await practitioner(server.url, server.store) for _ in range(3)]
    now = [0.0]
    profiles = Profiles(anne, ttl_s=60, clock=lambda: now[0])
    client = await connected(anne)
    try:
        await client.create_room("group", [c.user_id for c in colleagues])
        ids = [c.user_id for c in colleagues]
        found = await profiles.get([*ids, "unknown-id"])
        assert set(found) == set(ids) and profiles.requests == 1
        assert found[ids[0]].display_name.startswith("Prénom")
        # Cached, including the unknown id: no request.
        assert (await profiles.one(ids[1])) == found[ids[1]]
        await profiles.get(["unknown-id", *ids])
        assert profiles.requests == 1
        # After the TTL a card is asked again (a new badge or name shows up).
        await server.store.set_verified(ids[0], False)
        now[0] = 61
        fresh = await profiles.one(ids[0])
        assert fresh is not None and fresh.verified is False and profiles.requests == 2
    finally:
        await client.close()
