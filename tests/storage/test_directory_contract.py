"""The directory store contract (storage/directory.py docstring), for every adapter."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from storage import Conflict, NotFound, Store
from storage.directory import (
    SNP_MOTIVE,
    DirectoryQuery,
    Motive,
    NewAppointment,
    NewProfile,
    NewSlot,
    Organisation,
    Place,
    SasQuery,
)
from storage.outbox import NewNotification
from storage.types import NewAttachment, NewUser

_n = itertools.count(1)
DOUAI = (50.37069, 3.07922)
LILLE = (50.63297, 3.05858)
ORGS = [
    Organisation("cpts-douai", "cpts", "CPTS Grand Douai", "59500", "Douai"),
    Organisation("chu-lille", "hospital", "CHU de Lille", "59000", "Lille"),
    Organisation("msp-faubourg", "msp", "MSP Faubourg Santé", "59500", "Douai"),
]


def profile(
    pid: str,
    first: str,
    last: str,
    specialty: str,
    at: tuple[float, float] = DOUAI,
    orgs: tuple[str, ...] = (),
    *,
    user_id: str | None = None,
    visible: bool = True,
    city: str = "Douai",
    postcode: str = "59500",
) -> NewProfile:
    place = Place(f"pl-{pid}", pid, "Cabinet", "4c Rue d'Auby", postcode, city, *at)
    return NewProfile(
        pid,
        first,
        last,
        specialty,
        1,
        user_id=user_id,
        visible=visible,
        organisations=orgs,
        places=(place,),
    )


async def user(store: Store, verified: bool = False) -> str:
    n = next(_n)
    created = await store.create_user(
        NewUser(f"d{n}@example.org", "h", "Ann", f"N{n}", "59500", "Douai", "MG", "liberal"), 1
    )
    if verified:
        await store.set_verified(created.id, True)
    return created.id


async def directory(store: Store) -> dict[str, str]:
    """A small directory; returns the user id of the practitioner with an account."""
    account = await user(store, verified=True)
    await store.load_directory(
        ORGS,
        [
            profile("dupont", "Jean", "Dupont", "Médecine générale", orgs=("cpts-douai",)),
            profile("dupond", "Marc", "Dupond", "Médecine générale", orgs=("msp-faubourg",)),
            profile(
                "lefevre",
                "Émilie",
                "Lefèvre",
                "Cardiologie",
                LILLE,
                ("chu-lille",),
                city="Lille",
                postcode="59000",
            ),
            profile("faure", "Emmanuel", "Faure", "Cardiologie", orgs=("cpts-douai",)),
            profile("hidden", "Jean", "Duponteil", "Médecine générale", visible=False),
            profile("account", "Jeanne", "Dupontel", "Pédiatrie", user_id=account),
        ],
    )
    await store.finish_directory_load()
    return {"account": account}


async def ids(store: Store, **kwargs: object) -> list[str]:
    page = await store.search_directory(DirectoryQuery(**kwargs))  # type: ignore[arg-type]
    return [h.id for h in page.hits]


async def test_text_search_is_prefix_accent_and_case_insensitive(store: Store) -> None:
    await directory(store)
    assert await ids(store, words=("lefevre",)) == ["lefevre"]
    assert await ids(store, words=("lef",)) == ["lefevre"]
    assert await ids(store, words=("emilie", "lef")) == ["lefevre"]
    # Specialty, organisation and city words match too.
    assert set(await ids(store, words=("cardio",))) == {"lefevre", "faure"}
    assert await ids(store, words=("chu",)) == ["lefevre"]
    assert set(await ids(store, words=("lille",))) == {"lefevre"}


async def test_ranking_puts_last_names_and_accounts_first(store: Store) -> None:
    await directory(store)
    # "dupont": exact last name first; then last names starting with it (the one with
    # an account before the others); first names last. The hidden one never shows.
    found = await ids(store, words=("dupont",))
    assert found == ["dupont", "account"]
    found = await ids(store, words=("jean",))
    assert found == ["account", "dupont"]  # first names: the account first


async def test_hidden_profiles_are_not_searchable(store: Store) -> None:
    await directory(store)
    assert "hidden" not in await ids(store, words=("duponteil",))
    assert await ids(store, words=("duponteil",)) == []
    found = await store.profile("hidden")
    assert found is not None and not found.visible


async def test_typo_tolerance(store: Store) -> None:
    await directory(store)
    page = await store.search_directory(DirectoryQuery(words=("lefebre",)))
    assert [h.id for h in page.hits] == ["lefevre"] and page.corrected == ("lefevre",)
    page = await store.search_directory(DirectoryQuery(words=("fuare",)))  # transposition
    assert [h.id for h in page.hits] == ["faure"]
    assert await ids(store, words=("zzzzzz",)) == []


async def test_filters(store: Store) -> None:
    await directory(store)
    assert set(await ids(store, specialty="cardiologie")) == {"lefevre", "faure"}
    assert set(await ids(store, cpts="cpts-douai")) == {"dupont", "faure"}
    assert await ids(store, organisation="msp-faubourg") == ["dupond"]
    assert await ids(store, specialty="cardiologie", cpts="cpts-douai") == ["faure"]
    near_douai = await ids(store, near=DOUAI, radius_km=5)
    assert "lefevre" not in near_douai and {"dupont", "faure", "account"} <= set(near_douai)
    assert await ids(store, near=LILLE, radius_km=5) == ["lefevre"]
    page = await store.search_directory(DirectoryQuery(near=DOUAI, radius_km=40))
    lefevre = next(h for h in page.hits if h.id == "lefevre")
    assert lefevre.distance_km is not None and 25 < lefevre.distance_km < 35


async def test_keyset_pagination_visits_each_once(store: Store) -> None:
    await directory(store)
    seen: list[str] = []
    after = None
    while True:
        page = await store.search_directory(DirectoryQuery(limit=2, after=after))
        seen += [h.id for h in page.hits]
        if page.next_cursor is None:
            break
        after = page.next_cursor
    assert sorted(seen) == sorted({"dupont", "dupond", "lefevre", "faure", "account"})
    assert len(seen) == len(set(seen))


async def test_verified_badge_and_organisations(store: Store) -> None:
    links = await directory(store)
    page = await store.search_directory(DirectoryQuery(words=("dupontel",)))
    (hit,) = page.hits
    assert hit.user_id == links["account"] and hit.verified
    (faure,) = (await store.search_directory(DirectoryQuery(words=("faure",)))).hits
    assert not faure.verified and [o.name for o in faure.organisations] == ["CPTS Grand Douai"]
    assert (await store.profile_of_user(links["account"])) is not None


async def test_a_typo_of_a_rare_name_finds_it_on_the_first_page(store: Store) -> None:
    """ "martinu" is one letter from the common "Martin" and the rare "Martiny": the rare
    name's few practitioners come first, then the common one's, all pages through."""
    common = [profile(f"martin{i:02d}", f"P{i:02d}", "Martin", "Pédiatrie") for i in range(45)]
    rare = profile("martiny", "Zoé", "Martiny", "Pédiatrie")
    await store.load_directory([], [*common, rare])
    await store.finish_directory_load()
    page = await store.search_directory(DirectoryQuery(words=("martinu",), limit=20))
    assert page.corrected is not None and set(page.corrected) == {"martin", "martiny"}
    assert [h.id for h in page.hits][:1] == ["martiny"]
    seen = [h.id for h in page.hits]
    while page.next_cursor is not None:
        page = await store.search_directory(
            DirectoryQuery(words=("martinu",), limit=20, after=page.next_cursor)
        )
        seen += [h.id for h in page.hits]
    assert seen == ["martiny", *(p.id for p in common)]


async def test_favourites(store: Store) -> None:
    await directory(store)
    me = await user(store)
    await store.add_favourite(me, "faure", 10)
    await store.add_favourite(me, "lefevre", 20)
    await store.add_favourite(me, "lefevre", 30)  # idempotent
    assert [h.id for h in await store.favourites(me)] == ["lefevre", "faure"]
    assert await store.remove_favourite(me, "faure")
    assert not await store.remove_favourite(me, "faure")
    with pytest.raises(NotFound):
        await store.add_favourite(me, "nobody", 40)


async def agenda(store: Store) -> dict[str, str]:
    """Dr Faure's agenda: slots open to new patients online, closed to new patients,
    not bookable online, and with the SNP motive."""
    await store.add_motive(Motive("m-first", "faure", "Première consultation", 30))
    await store.add_motive(Motive("m-snp", "faure", SNP_MOTIVE, 15))
    base = 1_900_000_000_000
    hour = 3_600_000
    await store.add_slots(
        "faure",
        [
            ("s-open", NewSlot("pl-faure", base, base + hour, ("m-first",), True, True)),
            (
                "s-closed",
                NewSlot("pl-faure", base + hour, base + 2 * hour, ("m-first",), False, True),
            ),
            (
                "s-offline",
                NewSlot("pl-faure", base + 2 * hour, base + 3 * hour, ("m-first",), True, False),
            ),
            (
                "s-snp",
                NewSlot(
                    "pl-faure", base + 3 * hour, base + 4 * hour, ("m-first", "m-snp"), False, False
                ),
            ),
        ],
    )
    return {"base": str(base)}


async def test_sas_eligibility(store: Store) -> None:
    await directory(store)
    info = await agenda(store)
    base = int(info["base"])
    query = SasQuery(DOUAI, 10, base, base + 10 * 3_600_000)
    found = [s.slot.id for s in await store.sas_slots(query)]
    assert found == ["s-open", "s-snp"]
    first = SasQuery(DOUAI, 10, base, base + 10 * 3_600_000, limit=1)  # from the soonest
    assert [s.slot.id for s in await store.sas_slots(first)] == ["s-open"]
    assert all(s.slot.sas_eligible for s in await store.sas_slots(query))
    far = SasQuery(LILLE, 5, base, base + 10 * 3_600_000)
    assert await store.sas_slots(far) == []
    other_specialty = SasQuery(DOUAI, 10, base, base + 10 * 3_600_000, specialty="pediatrie")
    assert await store.sas_slots(other_specialty) == []
    with pytest.raises(NotFound):
        await store.add_slots(
            "faure", [("bad", NewSlot("pl-dupont", base, base + 1, ("m-first",)))]
        )


def booking(slot: str, by: str, n: int, attachments: tuple[str, ...] = ()) -> NewAppointment:
    return NewAppointment(
        f"appt-{n}",
        slot,
        "m-first",
        by,
        "referral",
        {"first_name": "Marie", "last_name": "Durand", "phone": "+33645372653"},
        "Bonjour",
        attachments,
        5,
    )


async def test_booking_is_atomic_and_exclusive(store: Store) -> None:
    links = await directory(store)
    await agenda(store)
    a, b = await user(store), await user(store)
    note = [NewNotification("sms", "+33645372653", "appointment_booked", {"n": 1})]
    results = await asyncio.gather(
        store.book(booking("s-open", a, 1), note, 5),
        store.book(booking("s-open", b, 2), note, 5),
        return_exceptions=True,
    )
    won = [r for r in results if not isinstance(r, BaseException)]
    lost = [r for r in results if isinstance(r, BaseException)]
    assert len(won) == 1 and len(lost) == 1 and isinstance(lost[0], Conflict)
    assert len(await store.notifications(channel="sms")) == 1
    slot = await store.slot("s-open")
    assert slot is not None and slot.appointment_id == won[0].id
    # A motive the slot does not carry, an unknown slot.
    with pytest.raises(NotFound):
        await store.book(booking("s-nope", a, 3), [], 5)
    appointment = await store.appointment(won[0].id)
    assert appointment is not None and appointment.patient["last_name"] == "Durand"
    assert appointment.motive_label == "Première consultation"
    assert [x.id for x in await store.appointments_of_practitioner("faure", 0, 2**62)] == [
        won[0].id
    ]
    assert links  # the practitioner without an account still gets the appointment


async def test_booking_references_documents_and_rolls_back_on_a_bad_one(store: Store) -> None:
    await directory(store)
    await agenda(store)
    me, other = await user(store), await user(store)
    mine = await store.create_attachment(NewAttachment(me, "document", "application/pdf", 1))
    await store.complete_attachment(mine.id, 10, "00")
    theirs = await store.create_attachment(NewAttachment(other, "document", "application/pdf", 1))
    await store.complete_attachment(theirs.id, 10, "00")
    with pytest.raises(NotFound):
        await store.book(booking("s-open", me, 10, (mine.id, theirs.id)), [], 7)
    slot = await store.slot("s-open")
    assert slot is not None and slot.appointment_id is None  # rolled back
    assert (await store.attachment(mine.id)).referenced_at is None  # type: ignore[union-attr]
    done = await store.book(booking("s-open", me, 11, (mine.id,)), [], 7)
    assert done.attachments == (mine.id,)
    assert (await store.attachment(mine.id)).referenced_at == 7  # type: ignore[union-attr]
    assert [x.id for x in await store.appointments_booked_by(me, 10)] == [done.id]
    await store.record_patient_access(done.id, me, 8)
    assert await store.patient_accesses(done.id) == [(me, 8)]


async def test_link_profile(store: Store) -> None:
    links = await directory(store)
    me = await user(store)
    await store.link_profile("faure", me)
    found = await store.profile_of_user(me)
    assert found is not None and found.id == "faure"
    with pytest.raises(NotFound):
        await store.link_profile("faure", await user(store))  # claimed already
    with pytest.raises(Conflict):
        await store.link_profile("dupont", me)  # one profile per account
    assert links


async def test_near_pages_follow_distance_with_accounts_first(store: Store) -> None:
    account = await user(store)
    lat, lon = DOUAI
    spread = [
        profile(f"p{i:02d}", "Ann", f"Nom{i:02d}", "Infirmier", (lat + i * 0.004, lon))
        for i in range(40)
    ]
    far = profile("far", "Zoé", "Compte", "Infirmier", (lat + 0.15, lon), user_id=account)
    await store.load_directory([], [*spread, far])
    seen: list[str] = []
    distances: list[float] = []
    after = None
    while True:
        page = await store.search_directory(
            DirectoryQuery(near=DOUAI, radius_km=20, limit=7, after=after)
        )
        seen += [h.id for h in page.hits]
        distances += [h.distance_km or 0.0 for h in page.hits]
        if page.next_cursor is None:
            break
        after = page.next_cursor
    assert seen[0] == "far"  # an account ranks first, however far within the radius
    assert seen[1:] == [f"p{i:02d}" for i in range(40)]
    assert distances[1:] == sorted(distances[1:])
    specialty = await store.search_directory(
        DirectoryQuery(near=DOUAI, radius_km=1, specialty="infirmier")
    )
    assert [h.id for h in specialty.hits] == ["p00", "p01", "p02"]


async def test_organisation_pages_put_accounts_first_then_names(store: Store) -> None:
    account = await user(store)
    members = [
        profile(f"m{i:02d}", "Ann", f"Membre{i:02d}", "Infirmier", orgs=("cpts-douai",))
        for i in range(15)
    ]
    boss = profile("boss", "Zoé", "Zz", "Infirmier", orgs=("cpts-douai",), user_id=account)
    outsider = profile("out", "Ann", "Membre99", "Infirmier")
    await store.load_directory(ORGS, [*members, boss, outsider])
    seen: list[str] = []
    after = None
    while True:
        page = await store.search_directory(DirectoryQuery(cpts="cpts-douai", limit=4, after=after))
        seen += [h.id for h in page.hits]
        if page.next_cursor is None:
            break
        after = page.next_cursor
    assert seen == ["boss", *[f"m{i:02d}" for i in range(15)]]
    page = await store.search_directory(DirectoryQuery(cpts="cpts-douai", specialty="cardiologie"))
    assert page.hits == []
