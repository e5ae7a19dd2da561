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

import math
from typing import Any, Protocol

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
from ..clock import now_ms
from ..directory.patient import MAX_INSTRUCTIONS, MESSAGE_NOTICE, SAS_NOTICE
from ..directory.profiles import ensure_profile
from ..directory.query import encode_cursor, is_id, parse_search
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
from ..fields import place, postcode, text
from ..handlers import Services
from ..openapi import api_route, array, boolean, integer, nullable, number, obj, string
from ..postcodes import locate_address
from ..sessions import require_verified
from .common import bearer, json_body
from .common import services as all_services

__all__ = ["routes", "time_window"]


class DirectoryPorts(DirectoryStore, AuditStore, Protocol):
    """What directory uses of the store."""


def services(request: Request) -> Services[DirectoryPorts]:
    return all_services(request)


DAY_MS = 86_400_000
MAX_WINDOW_MS = 31 * DAY_MS
MAX_SLOTS_PER_REQUEST = 500
_ID = {"type": "string", "maxLength": 64}


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


async def update_my_profile(request: Request) -> Response:
    """``visible``, ``required_fields`` (patient fields required beyond the default) and
    ``instructions`` (read by bookers before booking; "" for none)."""
    _, user = await bearer(request)
    require_verified(user)
    body = await json_body(request)
    unknown = sorted(set(body) - {"visible", "required_fields", "instructions"})
    if unknown:
        raise bad_request(f"unknown field(s): {', '.join(str(u)[:40] for u in unknown)}")
    svc = services(request)
    profile = await ensure_profile(svc.store, user)
    if "visible" in body:
        if not isinstance(body["visible"], bool):
            raise bad_request("field 'visible' must be true or false")
        await svc.store.set_profile_visible(profile.id, body["visible"])
    if "required_fields" in body:
        fields = body["required_fields"]
        if not isinstance(fields, list) or not all(f in PATIENT_FIELDS for f in fields):
            raise bad_request(
                f"field 'required_fields' must list patient fields: {', '.join(PATIENT_FIELDS)}"
            )
        extra = [f for f in dict.fromkeys(fields) if f not in DEFAULT_REQUIRED_FIELDS]
        await svc.store.set_required_fields(profile.id, extra)
    if "instructions" in body:
        instructions = text(body, "instructions", MAX_INSTRUCTIONS, 0, multiline=True)
        await svc.store.set_instructions(profile.id, instructions)
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


def _line(body: dict[str, Any], field: str, max_len: int, min_len: int = 1) -> str:
    value = text(body, field, max_len, min_len)
    if any(ord(c) < 32 for c in value):
        raise bad_request(f"field '{field}' must not contain control characters")
    return value


def _coordinate(body: dict[str, Any], name: str, low: float, high: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise bad_request(f"field '{name}' must be a number")
    if not math.isfinite(value) or not low <= value <= high:
        raise bad_request(f"field '{name}' must be between {low:g} and {high:g}")
    return float(value)


async def add_place(request: Request) -> Response:
    _, user = await bearer(request)
    require_verified(user)
    body = await json_body(request)
    svc = services(request)
    name = _line(body, "name", 100)
    address = _line(body, "address", 200)
    code = postcode(body)
    city = _line(body, "city", 100)
    lat = _coordinate(body, "lat", -90, 90)
    lon = _coordinate(body, "lon", -180, 180)
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
    body = await json_body(request)
    label = _line(body, "label", 100)
    duration = body.get("duration_min", 20)
    if not isinstance(duration, int) or isinstance(duration, bool) or not 5 <= duration <= 480:
        raise bad_request("field 'duration_min' must be a whole number of minutes, 5 to 480")
    svc = services(request)
    profile = await ensure_profile(svc.store, user)
    motive = Motive(new_id(), profile.id, label, duration)
    await svc.store.add_motive(motive)
    return JSONResponse({"motive": motive_json(motive)}, status_code=201)


def _new_slot(i: int, item: Any) -> NewSlot:
    where = f"slots[{i}]"
    if not isinstance(item, dict):
        raise bad_request(f"field '{where}' must be an object")
    place = item.get("place")
    if not isinstance(place, str) or not is_id(place):
        raise bad_request(f"field '{where}.place' is required and must be a place id")
    times = []
    for name in ("starts_at", "ends_at"):
        value = item.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 2**53:
            raise bad_request(f"field '{where}.{name}' must be a time in ms since the epoch")
        times.append(value)
    if not 0 < times[1] - times[0] <= DAY_MS:
        raise bad_request(f"field '{where}.ends_at' must be after starts_at, within a day")
    motives = item.get("motives")
    if (
        not isinstance(motives, list)
        or not 0 < len(motives) <= 20
        or not all(is_id(m) for m in motives)
    ):
        raise bad_request(f"field '{where}.motives' must list 1 to 20 motive ids")
    flags = []
    for name in ("open_to_new_patients", "bookable_online"):
        value = item.get(name, True)
        if not isinstance(value, bool):
            raise bad_request(f"field '{where}.{name}' must be true or false")
        flags.append(value)
    return NewSlot(place, times[0], times[1], tuple(dict.fromkeys(motives)), flags[0], flags[1])


async def add_slots(request: Request) -> Response:
    _, user = await bearer(request)
    require_verified(user)
    body = await json_body(request)
    items = body.get("slots")
    if not isinstance(items, list) or not 0 < len(items) <= MAX_SLOTS_PER_REQUEST:
        raise bad_request(f"field 'slots' must list 1 to {MAX_SLOTS_PER_REQUEST} slots")
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
        body=obj(
            {
                "visible": boolean(),
                "required_fields": array(string(enum=PATIENT_FIELDS)),
                "instructions": string(max_length=MAX_INSTRUCTIONS),
            },
            required=(),
            extra=False,
        ),
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
        body=obj(
            {
                "name": string(min_length=1, max_length=100),
                "address": string(min_length=1, max_length=200),
                "postcode": string(pattern="^[0-9]{5}$"),
                "city": string(min_length=1, max_length=100),
                "lat": number(),
                "lon": number(),
            },
            required=("name", "address", "postcode", "city"),
        ),
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
        body=obj(
            {
                "label": string(min_length=1, max_length=100),
                "duration_min": integer(minimum=5, maximum=480),
            },
            required=("label",),
        ),
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
        body=obj(
            {
                "slots": array(
                    obj(
                        {
                            "place": _ID,
                            "starts_at": integer(minimum=1),
                            "ends_at": integer(minimum=1),
                            "motives": array(_ID, max_items=20),
                            "open_to_new_patients": boolean(),
                            "bookable_online": boolean(),
                        },
                        required=("place", "starts_at", "ends_at", "motives"),
                    ),
                    max_items=MAX_SLOTS_PER_REQUEST,
                )
            }
        ),
        response=obj({"slots": array(SLOT)}),
        status=201,
        errors=(413,),
    ),
]
