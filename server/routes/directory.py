"""REST: the practitioner directory (search, profiles, favourites) and a
practitioner's own agenda (places, motives, slots, required patient fields, the
appointments booked with them).

Who may do what: any signed-in user searches and reads visible profiles (a hidden
profile is 404 to all but its owner); favourites are the caller's own; the agenda
routes act on the caller's own profile (made from their account on first use) and
need a verified identity. Reading one's agenda is a read of patient records: each
appointment returned is recorded in the patient-record audit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, ClassVar, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from protocol.errors import ErrorCode
from storage.audit import AuditStore
from storage.directory import (
    DEFAULT_REQUIRED_FIELDS,
    PATIENT_FIELDS,
    DirectoryQuery,
    DirectoryStore,
    Motive,
    NewSlot,
    Place,
)
from storage.ids import new_id

from ..audit import record_patient_reads
from ..bodies import (
    Flag,
    Integer,
    Items,
    Number,
    Pattern,
    Postcode,
    Strings,
    Text,
    schema_of,
)
from ..clock import now_ms
from ..directory.patient import MAX_INSTRUCTIONS, MESSAGE_NOTICE, SAS_NOTICE
from ..directory.profiles import ensure_profile
from ..directory.query import ID_PATTERN, encode_cursor, is_id, parse_search
from ..directory.views import (
    APPOINTMENT,
    HIT,
    MOTIVE,
    PLACE,
    PROFILE,
    SLOT,
    appointment_json,
    hit_json,
    motive_json,
    place_json,
    profile_json,
    slot_json,
)
from ..errors import ApiError, bad_request
from ..fields import place
from ..handlers import Services
from ..openapi import api_route, array, boolean, integer, nullable, number, obj, string
from ..postcodes import locate_address
from ..sessions import require_verified
from .common import bearer, read_body
from .common import services as all_services

__all__ = ["routes", "time_window"]


class DirectoryPorts(DirectoryStore, AuditStore, Protocol):
    """What directory uses of the store."""


def services(request: Request) -> Services[DirectoryPorts]:
    return all_services(request)


DAY_MS = 86_400_000
MAX_WINDOW_MS = 31 * DAY_MS
MAX_SLOTS_PER_REQUEST = 500


def time_window(request: Request, default_days: int = 7) -> tuple[int, int]:
    """``from`` and ``to`` (ms) from the query: at most 31 days apart, default the next
    ``default_days`` days."""
    now = now_ms()
    values = []
    for name, default in (("from", now), ("to", None)):
        raw = request.query_params.get(name)
        if raw is None or raw == "":
            values.append(default)
            continue
        if not raw.isdigit() or len(raw) > 15:
            raise bad_request(f"field '{name}' must be a time in ms since the epoch")
        values.append(int(raw))
    start = values[0]
    assert start is not None
    end = values[1] if values[1] is not None else start + default_days * DAY_MS
    if end <= start or end - start > MAX_WINDOW_MS:
        raise bad_request("field 'to' must be after 'from', at most 31 days later")
    return start, end


async def search(request: Request) -> Response:
    await bearer(request)
    svc = services(request)
    req = parse_search(request.query_params)
    point = req.point
    if req.near is not None:
        found = place(req.near)
        point = (found.lat, found.lon)
    page = await svc.store.search_directory(
        DirectoryQuery(
            words=req.words,
            specialty=req.specialty,
            organisation=req.organisation,
            cpts=req.cpts,
            near=point,
            radius_km=req.radius_km,
            limit=req.limit,
            after=req.after,
        )
    )
    return JSONResponse(
        {
            "results": [hit_json(h) for h in page.hits],
            "next_cursor": None if page.next_cursor is None else encode_cursor(page.next_cursor),
            "corrected": None if page.corrected is None else " ".join(page.corrected),
            "near": None if point is None else {"lat": point[0], "lon": point[1]},
        }
    )


async def get_profile(request: Request) -> Response:
    _, user = await bearer(request)
    svc = services(request)
    profile_id = request.path_params["profile_id"]
    profile = await svc.store.profile(profile_id) if is_id(profile_id) else None
    if profile is None or (not profile.visible and profile.user_id != user.id):
        raise ApiError(ErrorCode.NOT_FOUND, "no such profile")
    return JSONResponse({"profile": profile_json(profile)})


async def availability(request: Request) -> Response:
    """What a referrer needs to book: places, motives, free slots, required fields."""
    await bearer(request)
    svc = services(request)
    profile_id = request.path_params["profile_id"]
    profile = await svc.store.profile(profile_id) if is_id(profile_id) else None
    if profile is None or not profile.visible:
        raise ApiError(ErrorCode.NOT_FOUND, "no such profile")
    start, end = time_window(request)
    slots = await svc.store.slots(profile.id, start, end, free_only=True)
    required = list(dict.fromkeys([*DEFAULT_REQUIRED_FIELDS, *profile.required_fields]))
    return JSONResponse(
        {
            "profile": profile_json(profile),
            "places": [place_json(p) for p in profile.places],
            "motives": [motive_json(m) for m in await svc.store.motives(profile.id)],
            "slots": [slot_json(s) for s in slots],
            "required_fields": required,
            "message_notice": MESSAGE_NOTICE,
            "sas_notice": SAS_NOTICE,
            "instructions": profile.instructions,
        }
    )


async def my_profile(request: Request) -> Response:
    _, user = await bearer(request)
    require_verified(user)
    profile = await ensure_profile(services(request).store, user)
    return JSONResponse({"profile": profile_json(profile)})


@dataclass(frozen=True, slots=True)
class ProfileBody:
    """What is given changes; what is not (or null) stays."""

    closed: ClassVar[bool] = True  # an unknown field is refused, not ignored
    visible: Annotated[bool | None, Flag("must be true or false")] = None
    required_fields: Annotated[
        tuple[str, ...] | None,
        Strings(
            f"must list patient fields: {', '.join(PATIENT_FIELDS)}",
            64,  # bounded: no form has more fields
            values=PATIENT_FIELDS,
        ),
    ] = None
    instructions: Annotated[str | None, Text(MAX_INSTRUCTIONS, 0, multiline=True)] = None


async def update_my_profile(request: Request) -> Response:
    """``visible``, ``required_fields`` (patient fields required beyond the default) and
    ``instructions`` (read by bookers before booking; "" for none)."""
    _, user = await bearer(request)
    require_verified(user)
    body = await read_body(request, ProfileBody)
    svc = services(request)
    profile = await ensure_profile(svc.store, user)
    if body.visible is not None:
        await svc.store.set_profile_visible(profile.id, body.visible)
    if body.required_fields is not None:
        extra = [f for f in body.required_fields if f not in DEFAULT_REQUIRED_FIELDS]
        await svc.store.set_required_fields(profile.id, extra)
    if body.instructions is not None:
        await svc.store.set_instructions(profile.id, body.instructions)
    updated = await svc.store.profile(profile.id)
    assert updated is not None
    return JSONResponse({"profile": profile_json(updated)})


# -- favourites


async def list_favourites(request: Request) -> Response:
    _, user = await bearer(request)
    hits = await services(request).store.favourites(user.id)
    return JSONResponse({"favourites": [hit_json(h) for h in hits]})


async def add_favourite(request: Request) -> Response:
    _, user = await bearer(request)
    svc = services(request)
    profile_id = request.path_params["profile_id"]
    profile = await svc.store.profile(profile_id) if is_id(profile_id) else None
    if profile is None or not profile.visible:
        raise ApiError(ErrorCode.NOT_FOUND, "no such profile")
    await svc.store.add_favourite(user.id, profile.id, now_ms())
    return Response(status_code=204)


async def remove_favourite(request: Request) -> Response:
    _, user = await bearer(request)
    profile_id = request.path_params["profile_id"]
    if not is_id(profile_id) or not await services(request).store.remove_favourite(
        user.id, profile_id
    ):
        raise ApiError(ErrorCode.NOT_FOUND, "not a favourite")
    return Response(status_code=204)


# -- the caller's agenda


@dataclass(frozen=True, slots=True)
class PlaceBody:
    name: Annotated[str, Text(100)]
    address: Annotated[str, Text(200)]
    postcode: Annotated[str, Postcode()]
    city: Annotated[str, Text(100)]
    # Both or neither: without them, the postcode's (or the city's) locality.
    lat: Annotated[float | None, Number(-90, 90)] = None
    lon: Annotated[float | None, Number(-180, 180)] = None


@dataclass(frozen=True, slots=True)
class MotiveBody:
    label: Annotated[str, Text(100)]
    duration_min: Annotated[int, Integer(5, 480, "must be a whole number of minutes, 5 to 480")] = (
        20
    )


_EPOCH_MS = Integer(1, 2**53 - 1, "must be a time in ms since the epoch")


@dataclass(frozen=True, slots=True)
class SlotBody:
    place: Annotated[str, Pattern(ID_PATTERN, "is required and must be a place id")]
    starts_at: Annotated[int, _EPOCH_MS]
    ends_at: Annotated[int, _EPOCH_MS]  # after starts_at, within a day (checked by add_slots)
    motives: Annotated[tuple[str, ...], Strings("must list 1 to 20 motive ids", 20, 1, ID_PATTERN)]
    open_to_new_patients: Annotated[bool, Flag("must be true or false")] = True
    bookable_online: Annotated[bool, Flag("must be true or false")] = True


@dataclass(frozen=True, slots=True)
class SlotsBody:
    slots: Annotated[
        tuple[SlotBody, ...],
        Items(SlotBody, f"must list 1 to {MAX_SLOTS_PER_REQUEST} slots", MAX_SLOTS_PER_REQUEST),
    ]


async def add_place(request: Request) -> Response:
    _, user = await bearer(request)
    require_verified(user)
    body = await read_body(request, PlaceBody)
    svc = services(request)
    name, address, code, city = body.name, body.address, body.postcode, body.city
    lat, lon = body.lat, body.lon
    if (lat is None) != (lon is None):
        raise bad_request("fields 'lat' and 'lon' go together")
    if lat is None or lon is None:
        located = locate_address(code, city)
        assert located is not None  # every postcode of the base is located
        lat, lon = located.lat, located.lon
    profile = await ensure_profile(svc.store, user)
    added = Place(new_id(), profile.id, name, address, code, city, lat, lon)
    await svc.store.add_place(added)
    return JSONResponse({"place": place_json(added)}, status_code=201)


async def add_motive(request: Request) -> Response:
    _, user = await bearer(request)
    require_verified(user)
    body = await read_body(request, MotiveBody)
    label, duration = body.label, body.duration_min
    svc = services(request)
    profile = await ensure_profile(svc.store, user)
    motive = Motive(new_id(), profile.id, label, duration)
    await svc.store.add_motive(motive)
    return JSONResponse({"motive": motive_json(motive)}, status_code=201)


def _new_slot(i: int, item: SlotBody) -> NewSlot:
    if not 0 < item.ends_at - item.starts_at <= DAY_MS:
        raise bad_request(f"field 'slots[{i}].ends_at' must be after starts_at, within a day")
    return NewSlot(
        item.place,
        item.starts_at,
        item.ends_at,
        item.motives,
        item.open_to_new_patients,
        item.bookable_online,
    )


async def add_slots(request: Request) -> Response:
    _, user = await bearer(request)
    require_verified(user)
    items = (await read_body(request, SlotsBody)).slots
    slots = [(new_id(), _new_slot(i, item)) for i, item in enumerate(items)]
    svc = services(request)
    profile = await ensure_profile(svc.store, user)
    # A place or motive not the practitioner's: answered by server.errors.from_storage.
    await svc.store.add_slots(profile.id, slots)
    made = [await svc.store.slot(sid) for sid, _ in slots]
    return JSONResponse({"slots": [slot_json(s) for s in made if s is not None]}, status_code=201)


async def my_agenda(request: Request) -> Response:
    """The caller's slots and appointments (with patient data) in a time window."""
    _, user = await bearer(request)
    require_verified(user)
    svc = services(request)
    profile = await ensure_profile(svc.store, user)
    start, end = time_window(request)
    slots = await svc.store.slots(profile.id, start, end, free_only=False)
    appointments = await svc.store.appointments_of_practitioner(profile.id, start, end)
    now = now_ms()
    for a in appointments:
        await svc.store.record_patient_access(a.id, user.id, now)
    await record_patient_reads(svc.store, user.id, [a.id for a in appointments])
    return JSONResponse(
        {
            "profile": profile.id,
            "visible": profile.visible,
            "required_fields": list(profile.required_fields),
            "instructions": profile.instructions,
            "places": [place_json(p) for p in profile.places],
            "motives": [motive_json(m) for m in await svc.store.motives(profile.id)],
            "slots": [slot_json(s) for s in slots],
            "appointments": [appointment_json(a, svc.server_key) for a in appointments],
        }
    )


_SEARCH_QUERY = {
    "q": string(max_length=200),
    "specialty": string(max_length=100),
    "organisation": string(max_length=64),
    "cpts": string(max_length=64),
    "near": string(max_length=100),
    "lat": number(),
    "lon": number(),
    "radius_km": number(),
    "limit": integer(minimum=1, maximum=50),
    "cursor": string(max_length=600),
}
_WINDOW = {"from": integer(minimum=0), "to": integer(minimum=0)}
_PROFILE_RESPONSE = obj({"profile": PROFILE})

routes: list[Route] = [
    api_route(
        "/v1/directory/search",
        search,
        summary="Search the practitioner directory (text, specialty, organisation, CPTS, near)",
        query=_SEARCH_QUERY,
        response=obj(
            {
                "results": array(HIT),
                "next_cursor": nullable(string()),
                "corrected": nullable(string()),
                "near": nullable(obj({"lat": number(), "lon": number()})),
            }
        ),
    ),
    api_route(
        "/v1/directory/profiles/{profile_id}",
        get_profile,
        summary="A practitioner's directory profile",
        response=_PROFILE_RESPONSE,
        errors=(404,),
    ),
    api_route(
        "/v1/directory/profiles/{profile_id}/availability",
        availability,
        summary="Places, motives, free slots and required patient fields, to book",
        query=_WINDOW,
        response=obj(
            {
                "profile": PROFILE,
                "places": array(PLACE),
                "motives": array(MOTIVE),
                "slots": array(SLOT),
                "required_fields": array(string()),
                "message_notice": string(),
                "sas_notice": string(),
                "instructions": string(),
            }
        ),
        errors=(404,),
    ),
    api_route(
        "/v1/directory/me",
        my_profile,
        summary="The caller's own directory profile (made from the account on first use)",
        auth="verified",
        response=_PROFILE_RESPONSE,
    ),
    api_route(
        "/v1/directory/me",
        update_my_profile,
        "PATCH",
        summary="Show or hide the caller's profile; patient fields they require; instructions",
        auth="verified",
        body=schema_of(ProfileBody),
        response=_PROFILE_RESPONSE,
        errors=(413,),
    ),
    api_route(
        "/v1/directory/favourites",
        list_favourites,
        summary="The caller's favourite correspondents",
        response=obj({"favourites": array(HIT)}),
    ),
    api_route(
        "/v1/directory/favourites/{profile_id}",
        add_favourite,
        "PUT",
        summary="Add a favourite correspondent",
        status=204,
        errors=(404,),
    ),
    api_route(
        "/v1/directory/favourites/{profile_id}",
        remove_favourite,
        "DELETE",
        summary="Remove a favourite correspondent",
        status=204,
        errors=(404,),
    ),
    api_route(
        "/v1/agenda",
        my_agenda,
        summary="The caller's places, motives, slots and appointments (patient data: audited)",
        auth="verified",
        query=_WINDOW,
        response=obj(
            {
                "profile": string(),
                "visible": boolean(),
                "required_fields": array(string()),
                "instructions": string(),
                "places": array(PLACE),
                "motives": array(MOTIVE),
                "slots": array(SLOT),
                "appointments": array(APPOINTMENT),
            }
        ),
    ),
    api_route(
        "/v1/agenda/places",
        add_place,
        "POST",
        summary="Add a place of consultation",
        auth="verified",
        body=schema_of(PlaceBody),
        response=obj({"place": PLACE}),
        status=201,
        errors=(413,),
    ),
    api_route(
        "/v1/agenda/motives",
        add_motive,
        "POST",
        summary='Add a consultation motive ("Soins non programmés" opens slots to the SAS)',
        auth="verified",
        body=schema_of(MotiveBody),
        response=obj({"motive": MOTIVE}),
        status=201,
        errors=(413,),
    ),
    api_route(
        "/v1/agenda/slots",
        add_slots,
        "POST",
        summary="Open slots (flags: open to new patients, bookable online)",
        auth="verified",
        body=schema_of(SlotsBody),
        response=obj({"slots": array(SLOT)}),
        status=201,
        errors=(413,),
    ),
]
