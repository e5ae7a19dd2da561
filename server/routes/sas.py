"""REST: the SAS (Service d'Accès aux Soins) for regulators (platform role
"regulator"): search slots near a place, by specialty and time window, among those
open to new patients and bookable online or carrying "Soins non programmés"; book one
for a patient (the practitioner sees it marked ``via: "sas"``)."""

from __future__ import annotations

from typing import Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from storage.directory import SasQuery
from storage.roles import RoleStore
from storage.search_text import normalise

from ..bodies import schema_of
from ..directory.booking import BookingBody, BookingPorts, book
from ..directory.query import MAX_RADIUS_KM
from ..directory.views import (
    APPOINTMENT,
    HIT,
    PLACE,
    SLOT,
    appointment_json,
    hit_json,
    place_json,
    slot_json,
)
from ..errors import bad_request
from ..fields import place
from ..handlers import Services
from ..openapi import api_route, array, integer, number, obj, string
from ..sessions import require_role
from .common import bearer, read_body
from .common import services as all_services
from .directory import time_window

__all__ = ["routes"]


class SasPorts(BookingPorts, RoleStore, Protocol):
    """What sas uses of the store."""


def services(request: Request) -> Services[SasPorts]:
    return all_services(request)


_PARAMS = {"near", "lat", "lon", "radius_km", "specialty", "from", "to", "limit"}


def _float(request: Request, name: str, low: float, high: float) -> float | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise bad_request(f"field '{name}' must be a number") from None
    if not low <= value <= high:  # also refuses nan
        raise bad_request(f"field '{name}' must be between {low:g} and {high:g}")
    return value


async def slots(request: Request) -> Response:
    _, user = await bearer(request)
    svc = services(request)
    await require_role(svc.store, user, "regulator")
    unknown = set(request.query_params) - _PARAMS
    if unknown:
        raise bad_request(f"unknown parameter(s): {', '.join(sorted(unknown))}")
    lat = _float(request, "lat", -90, 90)
    lon = _float(request, "lon", -180, 180)
    near = (request.query_params.get("near") or "").strip()[:100]
    if lat is None or lon is None:
        if not near:
            raise bad_request("field 'near' (a postcode or city) or 'lat' and 'lon' is required")
        located = place(near)
        lat, lon = located.lat, located.lon
    radius = _float(request, "radius_km", 0.1, MAX_RADIUS_KM) or 20.0
    limit = _float(request, "limit", 1, 200)
    start, end = time_window(request, default_days=2)
    specialty = (request.query_params.get("specialty") or "").strip()[:100]
    found = await svc.store.sas_slots(
        SasQuery(
            (lat, lon),
            radius,
            start,
            end,
            normalise(specialty) or None,
            int(limit) if limit else 50,
        )
    )
    return JSONResponse(
        {
            "slots": [
                {
                    "slot": slot_json(s.slot),
                    "practitioner": hit_json(s.practitioner),
                    "place": place_json(s.place),
                }
                for s in found
            ]
        }
    )


async def create(request: Request) -> Response:
    _, user = await bearer(request)
    svc = services(request)
    await require_role(svc.store, user, "regulator")
    body = await read_body(request, BookingBody)
    appointment = await book(svc, user, body, "sas")
    return JSONResponse(
        {"appointment": appointment_json(appointment, svc.server_key)},
        status_code=201,
        headers={"Location": f"/v1/referrals/{appointment.id}"},
    )


routes: list[Route] = [
    api_route(
        "/v1/sas/slots",
        slots,
        summary="SAS: free slots open to the SAS near a place (regulators)",
        auth="role:regulator",
        query={
            "near": string(max_length=100),
            "lat": number(),
            "lon": number(),
            "radius_km": number(),
            "specialty": string(max_length=100),
            "from": integer(minimum=0),
            "to": integer(minimum=0),
            "limit": integer(minimum=1, maximum=200),
        },
        response=obj({"slots": array(obj({"slot": SLOT, "practitioner": HIT, "place": PLACE}))}),
    ),
    api_route(
        "/v1/sas/appointments",
        create,
        "POST",
        summary="SAS: book a slot for a patient (regulators)",
        auth="role:regulator",
        body=schema_of(BookingBody),
        response=obj({"appointment": APPOINTMENT}),
        status=201,
        errors=(404, 409, 413),
    ),
]
