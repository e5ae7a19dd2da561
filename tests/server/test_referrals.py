"""Referral booking and the SAS over REST, on SQLite and PostgreSQL: validation naming
each field, the double-booking race, notifications, the practitioner's real-time event,
documents, SAS eligibility and roles, and who may read a patient record."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from attachment_kit import sample
from directory_kit import BASE, PATIENT, call, node, small_directory

from clients.python import Account
from clients.python.attachments import upload_document
from harness import ServerUnderTest, connected, next_of, practitioner
from protocol.frames import Event
from server.notifications.worker import SEALED_RECIPIENT


@pytest.fixture(params=["sqlite", "postgres"])
async def dserver(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ServerUnderTest]:
    async with node(request, tmp_path) as server:
        await small_directory(server.store)
        yield server


async def faure(server: ServerUnderTest) -> Account:
    """Dr Faure signs up and claims the seeded profile (which has the agenda)."""
    account = await practitioner(server.url, server.store)
    await server.store.link_profile("faure", account.user_id)
    return account


def booking(slot: str = "s-open", **patient: Any) -> dict[str, Any]:
    fields = {**PATIENT, **patient}
    return {
        "slot": slot,
        "motive": "m-first",
        "patient": {k: v for k, v in fields.items() if v is not None},
        "message": "Patiente adressée pour avis cardiologique.",
    }


@pytest.mark.parametrize(
    "field", ["first_name", "last_name", "birth_name", "birth_date", "phone", "email"]
)
async def test_each_missing_required_field_is_named(dserver: ServerUnderTest, field: str) -> None:
    # The five default fields, and the e-mail Dr Faure requires on top.
    me = await practitioner(dserver.url, dserver.store)
    r = await call(me, dserver, "POST", "/v1/referrals", json=booking(**{field: None}))
    assert r.status_code == 400, r.text
    assert r.json()["message"] == f"missing required field(s): patient.{field}"


async def test_every_problem_is_named_at_once(dserver: ServerUnderTest) -> None:
    me = await practitioner(dserver.url, dserver.store)
    body = booking(
        first_name=None, phone="12 34", birth_date="31/02/1990", postcode="123", civility="x"
    )
    r = await call(me, dserver, "POST", "/v1/referrals", json=body)
    message = r.json()["message"]
    assert r.status_code == 400
    for name in (
        "patient.first_name",
        "patient.phone",
        "patient.birth_date",
        "patient.postcode",
        "patient.civility",
    ):
        assert name in message, message
    r = await call(me, dserver, "POST", "/v1/referrals", json={**booking(), "message": "x" * 2001})
    assert r.status_code == 400 and "message" in r.json()["message"]
    r = await call(me, dserver, "POST", "/v1/referrals", json={**booking(), "slot": None})
    assert r.status_code == 400 and "'slot'" in r.json()["message"]
    r = await call(me, dserver, "POST", "/v1/referrals", json=booking(slot="nope"))
    assert r.status_code == 404


async def test_booking_notifies_patient_and_practitioner(dserver: ServerUnderTest) -> None:
    doctor = await faure(dserver)
    me = await practitioner(dserver.url, dserver.store)
    device = await connected(doctor)
    try:
        r = await call(me, dserver, "POST", "/v1/referrals", json=booking())
        assert r.status_code == 201, r.text
        appointment = r.json()["appointment"]
        assert appointment["patient"]["phone"] == "+33645372653"  # E.164
        assert appointment["patient"]["birth_date"] == "1952-11-21"
        assert (
            appointment["via"] == "referral" and appointment["practitioner_user"] == doctor.user_id
        )
        event = await next_of(device, Event, kind="appointment.booked")
        assert isinstance(event, Event) and event.room == appointment["id"]
        assert event.reason == "referral" and event.by == me.user_id
    finally:
        await device.close()
    key = dserver.services.server_key
    # The patient's phone and e-mail wait in the outbox sealed under the server key.
    sms = await dserver.store.notifications(channel="sms")
    email = [
        n
        for n in await dserver.store.notifications(channel="email")
        if n.template == "appointment_booked"  # not the practitioners' e-mail codes
    ]
    assert [key.open_field(n.recipient, SEALED_RECIPIENT) for n in sms] == [b"+33645372653"]
    assert [key.open_field(n.recipient, SEALED_RECIPIENT) for n in email] == [
        b"marie.durand@email.com"
    ]
    assert [n.data["appointment"] for n in sms] == [appointment["id"]]
    assert [n.template for n in email] == ["appointment_booked"]
    assert "message" not in sms[0].data  # the referral's message stays between practitioners
    # The patient fields and the message are stored sealed, read in clear by the parties.
    stored = await dserver.store.appointment(appointment["id"])
    assert stored is not None and list(stored.patient) == ["sealed"]
    assert stored.message.startswith("sealed:") and "Durand" not in repr(stored)
    assert appointment["message"] == "Patiente adressée pour avis cardiologique."
    # The practitioner's agenda shows it, with the patient.
    r = await call(
        doctor, dserver, "GET", "/v1/agenda", params={"from": BASE, "to": BASE + 86_400_000}
    )
    assert [a["id"] for a in r.json()["appointments"]] == [appointment["id"]]
    assert r.json()["appointments"][0]["patient"]["last_name"] == "Durand"
    # The referrer sees their referrals.
    r = await call(me, dserver, "GET", "/v1/referrals")
    assert [a["id"] for a in r.json()["referrals"]] == [appointment["id"]]


async def test_concurrent_bookings_of_one_slot(dserver: ServerUnderTest) -> None:
    referrers = [await practitioner(dserver.url, dserver.store) for _ in range(4)]
    results = await asyncio.gather(
        *(call(a, dserver, "POST", "/v1/referrals", json=booking()) for a in referrers)
    )
    statuses = sorted(r.status_code for r in results)
    assert statuses == [201, 409, 409, 409], [r.text for r in results]
    assert {r.json().get("reason") for r in results if r.status_code == 409} == {"slot_taken"}
    winner = next(r for r in results if r.status_code == 201).json()["appointment"]
    assert len(await dserver.store.notifications(channel="sms")) == 1
    slot = await dserver.store.slot("s-open")
    assert slot is not None and slot.appointment_id == winner["id"]


async def test_patient_record_privacy(dserver: ServerUnderTest) -> None:
    doctor = await faure(dserver)
    me = await practitioner(dserver.url, dserver.store)
    stranger = await practitioner(dserver.url, dserver.store)
    r = await call(me, dserver, "POST", "/v1/referrals", json=booking())
    appointment_id = r.json()["appointment"]["id"]
    for who, status in ((me, 200), (doctor, 200), (stranger, 404)):
        r = await call(who, dserver, "GET", f"/v1/referrals/{appointment_id}")
        assert r.status_code == status
    assert (
        await call(stranger, dserver, "GET", f"/v1/referrals/{appointment_id}/accesses")
    ).status_code == 404
    r = await call(stranger, dserver, "GET", "/v1/referrals")
    assert r.json()["referrals"] == []
    r = await call(stranger, dserver, "GET", "/v1/agenda")
    assert r.json()["appointments"] == []
    r = await call(doctor, dserver, "GET", f"/v1/referrals/{appointment_id}/accesses")
    readers = [a["user"] for a in r.json()["accesses"]]
    assert me.user_id in readers and doctor.user_id in readers and stranger.user_id not in readers
    unverified = await practitioner(dserver.url, dserver.store, verified=False)
    r = await call(unverified, dserver, "POST", "/v1/referrals", json=booking("s-closed"))
    assert r.status_code == 403


async def test_referral_documents(dserver: ServerUnderTest) -> None:
    doctor = await faure(dserver)
    me = await practitioner(dserver.url, dserver.store)
    stranger = await practitioner(dserver.url, dserver.store)
    pdf = sample("application/pdf", 5000)
    doc = await upload_document(me, pdf, name="courrier.pdf")
    theirs = await upload_document(stranger, sample("image/png", 100), name="x.png")
    body = {**booking(), "attachments": [theirs["id"]]}
    r = await call(me, dserver, "POST", "/v1/referrals", json=body)
    assert r.status_code == 400 and "attachments" in r.json()["message"]
    r = await call(
        me, dserver, "POST", "/v1/referrals", json={**booking(), "attachments": [doc["id"]]}
    )
    assert r.status_code == 201
    appointment = r.json()["appointment"]
    stored = await dserver.store.attachment(doc["id"])
    assert stored is not None and stored.referenced_at is not None  # safe from the orphan sweep
    path = f"/v1/referrals/{appointment['id']}/documents/{doc['id']}"
    got = await call(doctor, dserver, "GET", path)
    assert got.status_code == 200 and got.content == pdf
    assert (await call(stranger, dserver, "GET", path)).status_code == 404


async def test_sas_regulators(dserver: ServerUnderTest) -> None:
    doctor = await faure(dserver)
    regulator = await practitioner(dserver.url, dserver.store)
    await dserver.store.grant_role(regulator.user_id, "regulator", 1)
    window = {"near": "59500", "radius_km": 10, "from": BASE, "to": BASE + 86_400_000}
    plain = await practitioner(dserver.url, dserver.store)
    assert (await call(plain, dserver, "GET", "/v1/sas/slots", params=window)).status_code == 403
    r = await call(regulator, dserver, "GET", "/v1/sas/slots", params=window)
    assert r.status_code == 200, r.text
    # Open to new patients and online, or "Soins non programmés"; not the others.
    assert [s["slot"]["id"] for s in r.json()["slots"]] == ["s-open", "s-snp"]
    # The area by the commune's name, or a postcode the official base lacks.
    r = await call(regulator, dserver, "GET", "/v1/sas/slots", params={**window, "near": "douai"})
    assert [s["slot"]["id"] for s in r.json()["slots"]] == ["s-open", "s-snp"]
    r = await call(regulator, dserver, "GET", "/v1/sas/slots", params={**window, "near": "59599"})
    assert r.status_code == 400 and r.json()["reason"] == "place_unknown", r.text
    r = await call(
        regulator, dserver, "GET", "/v1/sas/slots", params={**window, "specialty": "Pédiatrie"}
    )
    assert r.json()["slots"] == []
    r = await call(regulator, dserver, "POST", "/v1/sas/appointments", json=booking("s-closed"))
    assert r.status_code == 403 and "SAS" in r.json()["message"]
    r = await call(plain, dserver, "POST", "/v1/sas/appointments", json=booking("s-snp"))
    assert r.status_code == 403
    r = await call(
        regulator, dserver, "POST", "/v1/sas/appointments", json=booking("s-snp", email=None)
    )
    assert r.status_code == 400 and "patient.email" in r.json()["message"]  # Dr Faure wants it
    r = await call(regulator, dserver, "POST", "/v1/sas/appointments", json=booking("s-snp"))
    assert r.status_code == 201, r.text
    appointment = r.json()["appointment"]
    assert appointment["via"] == "sas"
    r = await call(
        doctor, dserver, "GET", "/v1/agenda", params={"from": BASE, "to": BASE + 86_400_000}
    )
    assert [a["via"] for a in r.json()["appointments"]] == ["sas"]
    r = await call(regulator, dserver, "GET", f"/v1/referrals/{appointment['id']}")
    assert r.status_code == 200  # the regulator who booked it
    # A slot not bookable online is no referral's either.
    me = await practitioner(dserver.url, dserver.store)
    r = await call(me, dserver, "POST", "/v1/referrals", json=booking("s-offline"))
    assert r.status_code == 403
    r = await call(regulator, dserver, "GET", "/v1/sas/slots", params=window)
    assert [s["slot"]["id"] for s in r.json()["slots"]] == ["s-open"]  # s-snp is taken


async def test_sas_booking_instructions_and_consultation_type(dserver: ServerUnderTest) -> None:
    """What the SAS booking screen shows and sends: the practitioner's instructions
    ("À lire avant de prendre RDV"), the SAS notice, and the consultation type."""
    doctor = await faure(dserver)
    regulator = await practitioner(dserver.url, dserver.store)
    await dserver.store.grant_role(regulator.user_id, "regulator", 1)
    text = "Pour un rendez-vous URGENT, merci de passer par le SECRÉTARIAT.\nMerci."
    r = await call(doctor, dserver, "PATCH", "/v1/directory/me", json={"instructions": text})
    assert r.status_code == 200 and r.json()["profile"]["instructions"] == text
    for bad in ("x" * 1001, "a\x00b", 3):
        r = await call(doctor, dserver, "PATCH", "/v1/directory/me", json={"instructions": bad})
        assert r.status_code == 400 and r.json()["field"] == "instructions", r.text
    window = {"from": BASE, "to": BASE + 86_400_000}
    r = await call(
        regulator, dserver, "GET", "/v1/directory/profiles/faure/availability", params=window
    )
    assert r.json()["instructions"] == text
    assert r.json()["sas_notice"].startswith("Attention : ce message ne sera pas lu en temps réel")
    body = {**booking("s-snp"), "motive": "m-snp"}
    r = await call(
        regulator,
        dserver,
        "POST",
        "/v1/sas/appointments",
        json={**body, "consultation_type": "telephone"},
    )
    assert r.status_code == 400 and r.json()["field"] == "consultation_type", r.text
    r = await call(
        regulator,
        dserver,
        "POST",
        "/v1/sas/appointments",
        json={**body, "consultation_type": "video"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["appointment"]["consultation_type"] == "video"
    r = await call(doctor, dserver, "GET", "/v1/agenda", params=window)
    assert [a["consultation_type"] for a in r.json()["appointments"]] == ["video"]
    # Without it, at the practice.
    me = await practitioner(dserver.url, dserver.store)
    r = await call(me, dserver, "POST", "/v1/referrals", json=booking())
    assert r.status_code == 201 and r.json()["appointment"]["consultation_type"] == "cabinet"
    r = await call(doctor, dserver, "PATCH", "/v1/directory/me", json={"instructions": ""})
    assert r.json()["profile"]["instructions"] == ""
