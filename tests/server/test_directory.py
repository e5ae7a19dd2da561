"""The directory over REST, on SQLite and PostgreSQL: search filters and ranking,
pagination, typos, visibility, favourites, a practitioner's own profile and agenda."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from directory_kit import DOUAI, call, node, small_directory

from harness import ServerUnderTest, practitioner
from server.directory.names import SPECIALTIES as SEED_SPECIALTIES
from server.directory.profiles import on_identity_verified
from server.postcodes import locate
from server.verification.specialties import is_specialty


@pytest.fixture(params=["sqlite", "postgres"])
async def dserver(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ServerUnderTest]:
    async with node(request, tmp_path) as server:
        await small_directory(server.store)
        yield server


async def search(server: ServerUnderTest, account: object, **params: object) -> list[str]:
    r = await call(account, server, "GET", "/v1/directory/search", params=params)  # type: ignore[arg-type]
    assert r.status_code == 200, r.text
    return [hit["id"] for hit in r.json()["results"]]


async def test_search_filters_and_ranking(dserver: ServerUnderTest) -> None:
    me = await practitioner(dserver.url, dserver.store)
    assert await search(dserver, me, q="LEFEVRE") == ["lefevre"]
    assert await search(dserver, me, q="émilie lef") == ["lefevre"]
    assert set(await search(dserver, me, q="cardio")) == {"lefevre", "faure"}
    assert set(await search(dserver, me, specialty="Cardiologie et maladies vasculaires")) == {
        "lefevre",
        "faure",
    }
    assert set(await search(dserver, me, cpts="cpts-douai")) == {"dupont", "faure"}
    assert await search(dserver, me, organisation="chu-lille") == ["lefevre"]
    kind = "cardiologie et maladies vasculaires"  # case and accents do not matter
    assert await search(dserver, me, specialty=kind, near="59000", radius_km=5) == ["lefevre"]
    near = await search(dserver, me, near="Douai", radius_km=5)
    assert "lefevre" not in near and {"dupont", "faure"} <= set(near)
    lat, lon = DOUAI
    assert "lefevre" in await search(dserver, me, lat=lat, lon=lon, radius_km=40)
    # Ranking: the last name typed first, then names starting with it, first names after.
    r = await call(me, dserver, "GET", "/v1/directory/search", params={"q": "jean"})
    assert [h["id"] for h in r.json()["results"]] == ["dupont"]  # the hidden Jean is not there
    hit = r.json()["results"][0]
    assert hit["organisations"][0]["name"] == "CPTS Grand Douai" and hit["verified"] is False


async def test_typos_and_pagination(dserver: ServerUnderTest) -> None:
    me = await practitioner(dserver.url, dserver.store)
    r = await call(me, dserver, "GET", "/v1/directory/search", params={"q": "lefebre"})
    assert [h["id"] for h in r.json()["results"]] == ["lefevre"]
    assert r.json()["corrected"] == "lefevre"
    seen: list[str] = []
    params: dict[str, object] = {"limit": 1}
    while True:
        r = await call(me, dserver, "GET", "/v1/directory/search", params=params)
        page = r.json()
        seen += [h["id"] for h in page["results"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert sorted(seen) == ["dupont", "faure", "lefevre"]
    assert me.user_id  # the caller's own profile appears once made (not yet here)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"radius_km": "9999"}, "radius_km"),
        ({"lat": "91", "lon": "2"}, "lat"),
        ({"lat": "48"}, "lon"),
        ({"limit": "0"}, "limit"),
        ({"cursor": "garbage!"}, "cursor"),
        ({"near": "Atlantis"}, "near"),
        ({"q": "x" * 201}, "q"),
        ({"colour": "blue"}, "colour"),
    ],
)
async def test_bad_search_parameters_are_named(
    dserver: ServerUnderTest, params: dict[str, str], field: str
) -> None:
    me = await practitioner(dserver.url, dserver.store)
    r = await call(me, dserver, "GET", "/v1/directory/search", params=params)
    assert r.status_code == 400 and field in r.json()["message"], r.text


async def test_where_by_arrondissement(dserver: ServerUnderTest) -> None:
    """ "Où ?" by postcode or by name finds the arrondissements of Paris, Lyon and
    Marseille (the official base); a postcode it does not know is refused, by name."""
    me = await practitioner(dserver.url, dserver.store)
    for postcode, city, short in (
        ("75011", "Paris", "Paris 11e"),
        ("69003", "Lyon", "lyon 3"),
        ("13001", "Marseille", "Marseille 1er"),
    ):
        colleague = await practitioner(dserver.url, dserver.store, postcode=postcode, city=city)
        r = await call(colleague, dserver, "GET", "/v1/directory/me")
        pid = r.json()["profile"]["id"]
        for near in (postcode, short, city):
            assert pid in await search(dserver, me, near=near, radius_km=3), near
        assert pid not in await search(dserver, me, near="Douai", radius_km=50)
    r = await call(
        me,
        dserver,
        "POST",
        "/v1/agenda/places",
        json={"name": "Cabinet", "address": "1 rue X", "postcode": "75021", "city": "Paris"},
    )
    assert r.status_code == 400 and r.json()["field"] == "postcode", r.text
    assert r.json()["reason"] == "postcode_unknown"
    r = await call(me, dserver, "GET", "/v1/directory/search", params={"near": "75021"})
    assert r.status_code == 400 and r.json()["reason"] == "place_unknown", r.text


async def test_search_needs_a_session(dserver: ServerUnderTest) -> None:
    r = await call(None, dserver, "GET", "/v1/directory/search", params={"q": "dupont"})
    assert r.status_code == 401


async def test_own_profile_visibility_and_verified_badge(dserver: ServerUnderTest) -> None:
    me = await practitioner(dserver.url, dserver.store)
    other = await practitioner(dserver.url, dserver.store)
    r = await call(me, dserver, "GET", "/v1/directory/me")
    assert r.status_code == 200
    mine = r.json()["profile"]
    assert mine["user"] == me.user_id and mine["verified"] and mine["visible"]
    # Their first place: their sign-up postcode and city, located by the official base.
    paris_11 = locate("75011")
    assert paris_11 is not None
    assert [(p["postcode"], p["city"], p["lat"], p["lon"]) for p in mine["places"]] == [
        ("75011", "Paris", paris_11.lat, paris_11.lon)
    ]
    last = mine["last_name"]
    found = await call(other, dserver, "GET", "/v1/directory/search", params={"q": last})
    assert [h["id"] for h in found.json()["results"]] == [mine["id"]]
    assert found.json()["results"][0]["verified"] is True
    r = await call(me, dserver, "PATCH", "/v1/directory/me", json={"visible": False})
    assert r.status_code == 200 and r.json()["profile"]["visible"] is False
    assert await search(dserver, other, q=last) == []
    assert (
        await call(other, dserver, "GET", f"/v1/directory/profiles/{mine['id']}")
    ).status_code == 404
    assert (
        await call(me, dserver, "GET", f"/v1/directory/profiles/{mine['id']}")
    ).status_code == 200
    r = await call(me, dserver, "PATCH", "/v1/directory/me", json={"required_fields": ["nope"]})
    assert r.status_code == 400 and "required_fields" in r.json()["message"]
    unverified = await practitioner(dserver.url, dserver.store, verified=False)
    assert (await call(unverified, dserver, "GET", "/v1/directory/me")).status_code == 403


async def test_favourites(dserver: ServerUnderTest) -> None:
    me = await practitioner(dserver.url, dserver.store)
    for pid in ("faure", "lefevre"):
        r = await call(me, dserver, "PUT", f"/v1/directory/favourites/{pid}")
        assert r.status_code == 204
    assert (await call(me, dserver, "PUT", "/v1/directory/favourites/hidden")).status_code == 404
    r = await call(me, dserver, "GET", "/v1/directory/favourites")
    assert [h["id"] for h in r.json()["favourites"]] == ["lefevre", "faure"]
    other = await practitioner(dserver.url, dserver.store)
    r = await call(other, dserver, "GET", "/v1/directory/favourites")
    assert r.json()["favourites"] == []
    assert (await call(me, dserver, "DELETE", "/v1/directory/favourites/faure")).status_code == 204
    assert (await call(me, dserver, "DELETE", "/v1/directory/favourites/faure")).status_code == 404


async def test_agenda_setup_and_availability(dserver: ServerUnderTest) -> None:
    me = await practitioner(dserver.url, dserver.store)
    colleague = await practitioner(dserver.url, dserver.store)
    r = await call(
        me,
        dserver,
        "POST",
        "/v1/agenda/places",
        json={
            "name": "Espace Santé",
            "address": "4c Rue d'Auby",
            "postcode": "59500",
            "city": "Douai",
        },
    )
    assert r.status_code == 201, r.text
    place = r.json()["place"]
    douai = locate("59500")  # located from the postcode, by the official base
    assert douai is not None and (place["lat"], place["lon"]) == (douai.lat, douai.lon)
    r = await call(
        me, dserver, "POST", "/v1/agenda/motives", json={"label": "Soins non programmés"}
    )
    snp = r.json()["motive"]
    assert r.status_code == 201 and snp["unscheduled_care"] is True
    start = 4_102_444_800_000
    slot = {
        "place": place["id"],
        "starts_at": start,
        "ends_at": start + 900_000,
        "motives": [snp["id"]],
    }
    r = await call(me, dserver, "POST", "/v1/agenda/slots", json={"slots": [slot]})
    assert r.status_code == 201 and r.json()["slots"][0]["sas_eligible"] is True
    bad = {**slot, "motives": ["m-first"]}  # Dr Faure's motive, not mine
    r = await call(me, dserver, "POST", "/v1/agenda/slots", json={"slots": [bad]})
    assert r.status_code == 400 and "slots" in r.json()["message"]
    r = await call(
        me, dserver, "POST", "/v1/agenda/slots", json={"slots": [{**slot, "ends_at": 1}]}
    )
    assert r.status_code == 400 and "slots[0].ends_at" in r.json()["message"]
    profile = (await call(me, dserver, "GET", "/v1/directory/me")).json()["profile"]
    r = await call(
        colleague,
        dserver,
        "GET",
        f"/v1/directory/profiles/{profile['id']}/availability",
        params={"from": start, "to": start + 86_400_000},
    )
    assert r.status_code == 200
    body = r.json()
    assert [s["id"] for s in body["slots"]] == [
        s["id"]
        for s in (
            await call(
                me, dserver, "GET", "/v1/agenda", params={"from": start, "to": start + 86_400_000}
            )
        ).json()["slots"]
    ]
    assert body["required_fields"] == [
        "first_name",
        "last_name",
        "birth_name",
        "birth_date",
        "phone",
    ]
    assert "responsabilité" in body["message_notice"]


async def test_a_verified_identity_gets_its_directory_row(dserver: ServerUnderTest) -> None:
    account = await practitioner(dserver.url, dserver.store, verified=False)
    assert await dserver.store.profile_of_user(account.user_id) is None
    await dserver.store.set_verified(account.user_id, True)
    user = await dserver.store.user_by_id(account.user_id)
    assert user is not None
    await on_identity_verified(dserver.store, user)
    profile = await dserver.store.profile_of_user(account.user_id)
    assert profile is not None and profile.verified and profile.visible


async def test_an_administrator_verifying_puts_the_practitioner_in_the_directory(
    dserver: ServerUnderTest,
) -> None:
    """Every path to a verified identity makes the directory row at once: here an
    administrator's switch (PSC, the card sign-up and a review call the same
    on_identity_verified)."""
    admin = await practitioner(dserver.url, dserver.store)
    await dserver.store.grant_role(admin.user_id, "admin", 1)
    account = await practitioner(dserver.url, dserver.store, verified=False)
    r = await call(
        admin,
        dserver,
        "PUT",
        f"/v1/admin/users/{account.user_id}/verified",
        json={"verified": True},
    )
    assert r.status_code == 200, r.text
    profile = await dserver.store.profile_of_user(account.user_id)
    assert profile is not None and profile.verified and profile.visible


async def test_a_regulator_is_not_in_the_directory(dserver: ServerUnderTest) -> None:
    regulator = await practitioner(dserver.url, dserver.store, verified=False)
    user = await dserver.store.user_by_id(regulator.user_id)
    assert user is not None
    await on_identity_verified(dserver.store, dataclasses.replace(user, profession="regulator"))
    assert await dserver.store.profile_of_user(regulator.user_id) is None


def test_one_specialty_vocabulary() -> None:
    """The synthetic directory speaks the sign-up form's list (the official one), so a
    filter chosen from that list finds the seeded practitioners too."""
    assert [s for s, _, _ in SEED_SPECIALTIES if not is_specialty(s)] == []
