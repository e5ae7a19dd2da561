"""A referral's patient fields and message, sealed under the server key in the database.

The server must read them (the patient's SMS and e-mail, the two practitioners' screens),
so they cannot be end-to-end encrypted; they are encrypted at rest instead, like
documents (:mod:`server.server_key`): whoever gets the database files, a backup or the
replication stream reads neither the patient's identity nor the message without the
key, which lives outside the database. ``patient`` is stored as
``{"sealed": "sealed:…"}``, ``message`` as ``"sealed:…"``; rows written before this
existed (clear values) are read as they are.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from storage.directory import Appointment, NewAppointment

from ..server_key import FIELD_PREFIX, ServerKey

__all__ = ["open_message", "open_patient", "seal_appointment"]

_PATIENT = "referral.patient"
_MESSAGE = "referral.message"


def seal_appointment(key: ServerKey, new: NewAppointment) -> NewAppointment:
    patient = json.dumps(new.patient, ensure_ascii=False, sort_keys=True).encode()
    return replace(
        new,
        patient={"sealed": key.seal_field(patient, _PATIENT)},
        message=key.seal_field(new.message.encode(), _MESSAGE),
    )


def open_patient(key: ServerKey, a: Appointment) -> dict[str, Any]:
    sealed = a.patient.get("sealed")
    if not isinstance(sealed, str) or len(a.patient) != 1:
        return a.patient  # written before patient fields were sealed
    value = json.loads(key.open_field(sealed, _PATIENT))
    assert isinstance(value, dict)
    return value


def open_message(key: ServerKey, a: Appointment) -> str:
    if not a.message.startswith(FIELD_PREFIX):
        return a.message
    return key.open_field(a.message, _MESSAGE).decode()
