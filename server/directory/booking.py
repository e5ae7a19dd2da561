"""Booking a slot for a patient, by a practitioner (referral, "adressage") or by a SAS
regulator: the checks, the one store transaction, and who is told.

Order of checks: the request's shape (400), the slot and its practitioner (404), who
may book it (403: a referral needs a slot bookable online; the SAS needs a slot open to
new patients and bookable online, or carrying "Soins non programmés"), the patient form
(400 naming every missing or invalid field), then the transaction (409 if the slot was
taken meanwhile: of two concurrent bookings exactly one wins). The patient is told by
SMS and e-mail through the outbox, in the booking's transaction; the practitioner's
connected devices get an ``appointment.booked`` event.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Protocol

from protocol import encode
from protocol.errors import ErrorCode
from protocol.frames import Event
from storage.base import UserStore
from storage.directory import (
    CONSULTATION_TYPES,
    Appointment,
    DirectoryStore,
    NewAppointment,
    Profile,
    Slot,
)
from storage.ids import new_id
from storage.outbox import Channel, NewNotification
from storage.types import User

from ..bodies import Choice, Deferred, Pattern, Strings, Text
from ..clock import now_ms
from ..errors import ApiError
from ..notifications.worker import SEALED_RECIPIENT
from ..server_key import ServerKey
from .at_rest import seal_appointment
from .patient import MAX_MESSAGE, check_patient
from .query import ID_PATTERN

if TYPE_CHECKING:
    from ..handlers import Services

__all__ = ["MAX_ATTACHMENTS", "BookingBody", "book", "notify_practitioner"]


class BookingPorts(UserStore, DirectoryStore, Protocol):
    """What booking uses of the store."""


log = logging.getLogger("confrere.directory")

MAX_ATTACHMENTS = 10


_ID = Pattern(ID_PATTERN, "is required and must be an id (at most 64 url-safe characters)")


@dataclass(frozen=True, slots=True)
class BookingBody:
    """A referral's or a SAS regulator's booking (both routes take the same body)."""

    closed: ClassVar[bool] = True  # an unknown field is refused, not ignored
    slot: Annotated[str, _ID]
    motive: Annotated[str, _ID]
    patient: Annotated[dict[str, Any], Deferred({"type": "object"})]  # check_patient
    message: Annotated[str, Text(MAX_MESSAGE, 0, multiline=True)] = ""
    attachments: Annotated[
        tuple[str, ...],
        Strings(
            f"must be a list of at most {MAX_ATTACHMENTS} attachment ids",
            MAX_ATTACHMENTS,
            regex=ID_PATTERN,
        ),
    ] = ()
    consultation_type: Annotated[str, Choice(CONSULTATION_TYPES)] = "cabinet"


def _may_book(slot: Slot, via: str) -> None:
    if slot.appointment_id is not None:
        raise ApiError(ErrorCode.CONFLICT, "this slot is already booked", reason="slot_taken")
    if via == "sas" and not slot.sas_eligible:
        raise ApiError(
            ErrorCode.FORBIDDEN,
            "this slot is not open to the SAS (it must be open to new patients and bookable"
            " online, or carry the motive 'Soins non programmés')",
        )
    if via == "referral" and not slot.bookable_online:
        raise ApiError(ErrorCode.FORBIDDEN, "this slot is not bookable online")


def _notifications(
    key: ServerKey,
    appointment_id: str,
    profile: Profile,
    slot: Slot,
    patient: dict[str, Any],
    via: str,
) -> list[NewNotification]:
    """What the patient receives: when, with whom, where; nothing of the referral's
    message or documents. The patient's phone and e-mail are sealed under the server
    key until the outbox worker delivers (``SEALED_RECIPIENT``)."""
    place = next((p for p in profile.places if p.id == slot.place_id), None)
    data = {
        "appointment": appointment_id,
        "practitioner": f"{profile.title} {profile.first_name} {profile.last_name}".strip(),
        "specialty": profile.specialty,
        "starts_at": slot.starts_at,
        "place": None
        if place is None
        else f"{place.name}, {place.address}, {place.postcode} {place.city}",
        "via": via,
    }
    notes = []
    channels: tuple[tuple[Channel, str], ...] = (("sms", "phone"), ("email", "email"))
    for channel, name in channels:
        if name in patient:
            recipient = key.seal_field(patient[name].encode(), SEALED_RECIPIENT)
            notes.append(NewNotification(channel, recipient, "appointment_booked", data))
    return notes


async def notify_practitioner(svc: Services[BookingPorts], appointment: Appointment) -> None:
    """An ``appointment.booked`` event to each device of the practitioner's account."""
    user_id = appointment.practitioner_user_id
    if user_id is None:
        return
    frame = encode(
        Event(
            kind="appointment.booked",
            room=appointment.id,
            ts=appointment.starts_at,
            by=appointment.booked_by,
            reason=appointment.via,
        )
    )
    for device in await svc.store.devices_of(user_id):
        await svc.hub.publish_to_device(user_id, device.id, frame)


async def book(
    svc: Services[BookingPorts], caller: User, body: BookingBody, via: str
) -> Appointment:
    slot_id, motive_id, message = body.slot, body.motive, body.message
    attachments, consultation_type = body.attachments, body.consultation_type
    slot = await svc.store.slot(slot_id)
    profile = None if slot is None else await svc.store.profile(slot.profile_id)
    if slot is None or profile is None or not profile.visible:
        raise ApiError(ErrorCode.NOT_FOUND, "no such slot")
    if motive_id not in slot.motive_ids:
        raise ApiError(ErrorCode.NOT_FOUND, "field 'motive' is not a motive of this slot")
    _may_book(slot, via)
    today = dt.datetime.now(dt.UTC).date()
    form = check_patient(body.patient, profile.required_fields, today)
    if not form.ok:  # the message names every patient field at fault
        raise ApiError(ErrorCode.BAD_FRAME, form.problem(), field="patient")
    now = now_ms()
    appointment_id = new_id()
    new = NewAppointment(
        appointment_id,
        slot.id,
        motive_id,
        caller.id,
        via,
        form.patient,
        message,
        attachments,
        now,
        consultation_type,
    )
    # Refusals (slot taken meanwhile, attachments not the booker's documents...) are
    # answered by server.errors.from_storage.
    appointment = await svc.store.book(
        seal_appointment(svc.server_key, new),
        _notifications(svc.server_key, appointment_id, profile, slot, form.patient, via),
        now,
    )
    log.info("appointment %s booked via %s", appointment.id, via)
    try:
        await notify_practitioner(svc, appointment)
    except Exception:  # the booking stands; the agenda shows it on the next read
        log.exception("could not notify the practitioner of appointment %s", appointment.id)
    return appointment
