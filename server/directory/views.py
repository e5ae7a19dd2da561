"""JSON shapes of the directory, agenda and booking records, and their JSON Schemas
(the OpenAPI document promises these)."""

from __future__ import annotations

from typing import Any

from storage.directory import (
    CONSULTATION_TYPES,
    PATIENT_FIELDS,
    Appointment,
    Hit,
    Motive,
    Organisation,
    Place,
    Profile,
    Slot,
)

from ..openapi import array, boolean, integer, nullable, number, obj, string
from ..server_key import ServerKey
from .at_rest import open_message, open_patient
from .query import encode_cursor

__all__ = [
    "APPOINTMENT",
    "HIT",
    "MOTIVE",
    "ORGANISATION",
    "PLACE",
    "PROFILE",
    "SLOT",
    "appointment_json",
    "hit_json",
    "motive_json",
    "organisation_json",
    "place_json",
    "profile_json",
    "slot_json",
]

ORGANISATION = obj(
    {"id": string(), "kind": string(), "name": string(), "postcode": string(), "city": string()}
)
PLACE = obj(
    {
        "id": string(),
        "name": string(),
        "address": string(),
        "postcode": string(),
        "city": string(),
        "lat": number(),
        "lon": number(),
    }
)
HIT = obj(
    {
        "id": string(),
        "user": nullable(string()),
        "title": string(),
        "first_name": string(),
        "last_name": string(),
        "specialty": string(),
        "verified": boolean(),
        "postcode": string(),
        "city": string(),
        "organisations": array(ORGANISATION),
        "distance_km": nullable(number()),
    }
)
PROFILE = obj(
    {
        "id": string(),
        "user": nullable(string()),
        "title": string(),
        "first_name": string(),
        "last_name": string(),
        "specialty": string(),
        "rpps": nullable(string()),
        "verified": boolean(),
        "visible": boolean(),
        "organisations": array(ORGANISATION),
        "places": array(PLACE),
        "required_fields": array(string()),
        "instructions": string(),
    }
)
MOTIVE = obj(
    {"id": string(), "label": string(), "duration_min": integer(), "unscheduled_care": boolean()}
)
SLOT = obj(
    {
        "id": string(),
        "practitioner": string(),
        "place": string(),
        "starts_at": integer(),
        "ends_at": integer(),
        "motives": array(string()),
        "open_to_new_patients": boolean(),
        "bookable_online": boolean(),
        "unscheduled_care": boolean(),
        "sas_eligible": boolean(),
        "booked": boolean(),
    }
)
APPOINTMENT = obj(
    {
        "id": string(),
        "slot": string(),
        "practitioner": string(),
        "practitioner_user": nullable(string()),
        "place": string(),
        "motive": string(),
        "motive_label": string(),
        "starts_at": integer(),
        "ends_at": integer(),
        "booked_by": string(),
        "via": string(enum=("referral", "sas")),
        "consultation_type": string(enum=CONSULTATION_TYPES),
        "patient": obj({name: {} for name in PATIENT_FIELDS}, required=(), extra=False),
        "message": string(),
        "attachments": array(string()),
        "created_at": integer(),
    }
)


def organisation_json(o: Organisation) -> dict[str, Any]:
    return {"id": o.id, "kind": o.kind, "name": o.name, "postcode": o.postcode, "city": o.city}


def place_json(p: Place) -> dict[str, Any]:
    return {
        "id": p.id,
        "name": p.name,
        "address": p.address,
        "postcode": p.postcode,
        "city": p.city,
        "lat": p.lat,
        "lon": p.lon,
    }


def hit_json(h: Hit) -> dict[str, Any]:
    return {
        "id": h.id,
        "user": h.user_id,
        "title": h.title,
        "first_name": h.first_name,
        "last_name": h.last_name,
        "specialty": h.specialty,
        "verified": h.verified,
        "postcode": h.postcode,
        "city": h.city,
        "organisations": [organisation_json(o) for o in h.organisations],
        "distance_km": h.distance_km,
        "cursor": encode_cursor(h.cursor),
    }


def profile_json(p: Profile) -> dict[str, Any]:
    return {
        "id": p.id,
        "user": p.user_id,
        "title": p.title,
        "first_name": p.first_name,
        "last_name": p.last_name,
        "specialty": p.specialty,
        "rpps": p.rpps,
        "verified": p.verified,
        "visible": p.visible,
        "organisations": [organisation_json(o) for o in p.organisations],
        "places": [place_json(x) for x in p.places],
        "required_fields": list(p.required_fields),
        "instructions": p.instructions,
    }


def motive_json(m: Motive) -> dict[str, Any]:
    return {
        "id": m.id,
        "label": m.label,
        "duration_min": m.duration_min,
        "unscheduled_care": m.unscheduled_care,
    }


def slot_json(s: Slot) -> dict[str, Any]:
    return {
        "id": s.id,
        "practitioner": s.profile_id,
        "place": s.place_id,
        "starts_at": s.starts_at,
        "ends_at": s.ends_at,
        "motives": list(s.motive_ids),
        "open_to_new_patients": s.open_to_new_patients,
        "bookable_online": s.bookable_online,
        "unscheduled_care": s.unscheduled_care,
        "sas_eligible": s.sas_eligible,
        "booked": s.appointment_id is not None,
    }


def appointment_json(a: Appointment, key: ServerKey) -> dict[str, Any]:
    """``key`` opens the patient fields and message (sealed at rest: :mod:`.at_rest`)."""
    return {
        "id": a.id,
        "slot": a.slot_id,
        "practitioner": a.profile_id,
        "practitioner_user": a.practitioner_user_id,
        "place": a.place_id,
        "motive": a.motive_id,
        "motive_label": a.motive_label,
        "starts_at": a.starts_at,
        "ends_at": a.ends_at,
        "booked_by": a.booked_by,
        "via": a.via,
        "consultation_type": a.consultation_type,
        "patient": open_patient(key, a),
        "message": open_message(key, a),
        "attachments": list(a.attachments),
        "created_at": a.created_at,
    }
