"""REST: referral booking ("adressage"): a verified practitioner books a colleague's
slot for a patient, with a message and documents.

Privacy: an appointment, with its patient data and documents, is visible only to the
one who booked it and to the practitioner it is booked with; every such read is
recorded (who, which record, when) and listed to those same two people.
Documents are uploaded first with ``POST /v1/attachments?kind=document`` (magic bytes
checked, encrypted at rest under the server key); the booking references them in its
transaction, which keeps them from the orphan sweep.
"""

from __future__ import annotations

from typing import Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from protocol.errors import ErrorCode
from storage.audit import AuditStore
from storage.base import AttachmentStore
from storage.directory import Appointment
from storage.types import User

from ..audit import record_patient_reads
from ..bodies import schema_of
from ..clock import now_ms
from ..directory.booking import BookingBody, BookingPorts, book
from ..directory.query import is_id
from ..directory.views import APPOINTMENT, appointment_json
from ..errors import ApiError
from ..handlers import Services
from ..openapi import api_route, array, integer, obj, string
from ..sessions import require_verified
from ..uploads import content_disposition, open_content
from .common import bearer, read_body
from .common import services as all_services

__all__ = ["readable_appointment", "routes"]


class ReferralPorts(BookingPorts, AttachmentStore, AuditStore, Protocol):
    """What referrals uses of the store."""


def services(request: Request) -> Services[ReferralPorts]:
    return all_services(request)


async def readable_appointment(
    svc: Services[ReferralPorts], user: User, appointment_id: str
) -> Appointment:
    """The appointment, if ``user`` booked it or is its practitioner (else 404: its
    existence is not disclosed); the read is recorded."""
    found = await svc.store.appointment(appointment_id) if is_id(appointment_id) else None
    if found is None or user.id not in (found.booked_by, found.practitioner_user_id):
        raise ApiError(ErrorCode.NOT_FOUND, "no such appointment")
    await svc.store.record_patient_access(found.id, user.id, now_ms())
    await record_patient_reads(svc.store, user.id, [found.id])
    return found


async def create(request: Request) -> Response:
    _, user = await bearer(request)
    require_verified(user)
    body = await read_body(request, BookingBody)
    svc = services(request)
    appointment = await book(svc, user, body, "referral")
    return JSONResponse(
        {"appointment": appointment_json(appointment, svc.server_key)},
        status_code=201,
        headers={"Location": f"/v1/referrals/{appointment.id}"},
    )


async def mine(request: Request) -> Response:
    _, user = await bearer(request)
    svc = services(request)
    booked = await svc.store.appointments_booked_by(user.id, 200)
    now = now_ms()
    for a in booked:
        await svc.store.record_patient_access(a.id, user.id, now)
    await record_patient_reads(svc.store, user.id, [a.id for a in booked])
    return JSONResponse({"referrals": [appointment_json(a, svc.server_key) for a in booked]})


async def detail(request: Request) -> Response:
    _, user = await bearer(request)
    svc = services(request)
    appointment = await readable_appointment(svc, user, request.path_params["appointment_id"])
    return JSONResponse({"appointment": appointment_json(appointment, svc.server_key)})


async def accesses(request: Request) -> Response:
    _, user = await bearer(request)
    svc = services(request)
    appointment = await readable_appointment(svc, user, request.path_params["appointment_id"])
    reads = await svc.store.patient_accesses(appointment.id)
    return JSONResponse({"accesses": [{"user": u, "at": at} for u, at in reads]})


async def document(request: Request) -> Response:
    """A document of the referral, decrypted, for the two parties."""
    _, user = await bearer(request)
    svc = services(request)
    appointment = await readable_appointment(svc, user, request.path_params["appointment_id"])
    attachment_id = request.path_params["attachment_id"]
    if attachment_id not in appointment.attachments:
        raise ApiError(ErrorCode.NOT_FOUND, "no such document in this referral")
    attachment = await svc.store.attachment(attachment_id)
    if attachment is None or attachment.state != "ready":
        raise ApiError(ErrorCode.NOT_FOUND, "no such document in this referral")
    content = await open_content(svc, attachment)
    disposition = content_disposition(svc, attachment)
    return StreamingResponse(
        content,
        media_type=attachment.content_type,
        headers={
            "Content-Length": str(attachment.size),
            "Content-Disposition": disposition,
            "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


routes: list[Route] = [
    api_route(
        "/v1/referrals",
        create,
        "POST",
        summary="Book a colleague's slot for a patient (referral)",
        auth="verified",
        body=schema_of(BookingBody),
        response=obj({"appointment": APPOINTMENT}),
        status=201,
        errors=(404, 409, 413),
    ),
    api_route(
        "/v1/referrals",
        mine,
        summary="The appointments the caller booked (newest first; audited read)",
        response=obj({"referrals": array(APPOINTMENT)}),
    ),
    api_route(
        "/v1/referrals/{appointment_id}",
        detail,
        summary="One appointment, for the one who booked it and its practitioner",
        response=obj({"appointment": APPOINTMENT}),
        errors=(404,),
    ),
    api_route(
        "/v1/referrals/{appointment_id}/accesses",
        accesses,
        summary="Who read this patient record, and when",
        response=obj({"accesses": array(obj({"user": string(), "at": integer()}))}),
        errors=(404,),
    ),
    api_route(
        "/v1/referrals/{appointment_id}/documents/{attachment_id}",
        document,
        summary="A document attached to the referral (decrypted)",
        response={"type": "string", "format": "binary"},
        content_type="application/octet-stream",
        errors=(404,),
    ),
]
