"""SMS through OVHcloud's SMS API against a local server speaking it (tests/sms_api.py):
the signed request, numbers normalised with phonenumbers, and what each answer makes the
outbox do; then a whole node texting a patient their appointment."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from attachment_kit import wait_until
from directory_kit import PATIENT, call, small_directory
from sms_api import APPLICATION_KEY, APPLICATION_SECRET, CONSUMER_KEY, SERVICE, OvhSmsApi

from harness import practitioner, running_server, settings_for
from server.fields import e164
from server.notifications import Backoff, OutboxWorker, OvhSms, OvhSmsSettings, open_notifications
from server.notifications.sms import ovh_signature
from storage import Store, open_store
from storage.outbox import NewNotification, Notification

APPOINTMENT = {
    "appointment": "a1",
    "practitioner": "Dr Paul Faure",
    "specialty": "Cardiologue",
    "starts_at": 1_764_774_000_000,
    "place": "Cabinet, 4c Rue d'Auby, 59500 Douai",
    "via": "referral",
}


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(f"sqlite:///{tmp_path / 'sms.db'}")
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def api() -> AsyncIterator[OvhSmsApi]:
    server = OvhSmsApi()
    try:
        yield server
    finally:
        await server.close()


def sms_settings(api: OvhSmsApi, **overrides: object) -> OvhSmsSettings:
    base = OvhSmsSettings(
        base_url=api.base_url,
        service=SERVICE,
        application_key=APPLICATION_KEY,
        application_secret=APPLICATION_SECRET,
        consumer_key=CONSUMER_KEY,
        sender="Confrere",
        timeout_s=5.0,
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


def worker_for(store: Store, settings: OvhSmsSettings) -> OutboxWorker:
    return OutboxWorker(
        store,
        {"sms": OvhSms(settings)},
        backoff=Backoff(base_ms=30, cap_ms=100, max_attempts=50),
        poll_s=0.02,
    )


async def one(store: Store, nid: int) -> Notification:
    [found] = [n for n in await store.notifications(limit=1000) if n.id == nid]
    return found


async def enqueue(store: Store, number: str = "06 45 37 26 53") -> int:
    [nid] = await store.enqueue_notifications(
        [NewNotification("sms", number, "appointment_booked", APPOINTMENT)],
        int(time.time() * 1000),
    )
    return nid


async def state_is(store: Store, nid: int, state: str, min_attempts: int = 1) -> None:
    async def reached() -> bool:
        n = await one(store, nid)
        return n.state == state and n.attempts >= min_attempts

    await wait_until(reached, 20.0)


def test_signature_and_numbers() -> None:
    # OVHcloud's documented recipe: "$1$" + SHA1_HEX(AS+"+"+CK+"+"+METHOD+"+"+URL+"+"+BODY+"+"+T)
    assert ovh_signature("AS", "CK", "get", "https://eu.api.ovh.com/1.0/me", "", 1) == (
        "$1$"
        + __import__("hashlib").sha1(b"AS+CK+GET+https://eu.api.ovh.com/1.0/me++1").hexdigest()
    )
    assert e164("06 45 37 26 53") == "+33645372653"
    assert e164("+262 692 12 34 56") == "+262692123456"
    assert e164("06 00 00") is None and e164("1" * 41) is None and e164("téléphone") is None


async def test_delivered_once_signed_and_normalised(store: Store, api: OvhSmsApi) -> None:
    await api.start()
    worker = worker_for(store, sms_settings(api))
    nid = await enqueue(store)
    worker.start()
    try:
        [sent] = await api.wait_for(1)
        await state_is(store, nid, "sent")
        assert await worker.run_once() == 0
    finally:
        await worker.close()
    assert api.requests == 1 and (await one(store, nid)).attempts == 1
    assert sent.receivers == ["+33645372653"]
    assert sent.message == (
        "Confrère : Rendez-vous confirmé avec Dr Paul Faure (Cardiologue) le mercredi "
        "3 décembre 2025 à 16 h 00, Cabinet, 4c Rue d'Auby, 59500 Douai."
    )
    assert sent.body["sender"] == "Confrere" and sent.body["noStopClause"] is True


async def test_failures_retry_or_give_up(store: Store, api: OvhSmsApi) -> None:
    worker = worker_for(store, sms_settings(api))
    refused_first = await enqueue(store)
    worker.start()
    try:
        # Down, then 503 and 429: retried, then sent once.
        await state_is(store, refused_first, "pending", min_attempts=2)
        assert "SMS API unreachable" in ((await one(store, refused_first)).last_error or "")
        api.script[:] = [503, 429]
        await api.start()
        await api.wait_for(1)
        await state_is(store, refused_first, "sent")
        # Not a phone number: given up without asking the API.
        before = api.requests
        not_a_number = await enqueue(store, "06 45")
        await state_is(store, not_a_number, "failed")
        assert api.requests == before
        # 400, and a number the API calls invalid: given up at once.
        api.script[:] = [400]
        bad_request = await enqueue(store)
        await state_is(store, bad_request, "failed")
        api.invalid.add("+33781234567")
        invalid = await enqueue(store, "07 81 23 45 67")
        await state_is(store, invalid, "failed")
    finally:
        await worker.close()
    assert len(api.sent) == 1
    for nid, attempts, error in [
        (not_a_number, 1, "SMS recipient is not a valid phone number"),
        (bad_request, 1, "SMS API refused the request: HTTP 400"),
        (invalid, 1, "SMS API: invalid receiver"),
    ]:
        n = await one(store, nid)
        assert (n.attempts, n.last_error) == (attempts, error)
        assert "06 45" not in (n.last_error or "")


async def test_wrong_keys_and_timeouts_are_retried(store: Store, api: OvhSmsApi) -> None:
    await api.start()
    wrong = worker_for(store, sms_settings(api, application_secret="not the secret"))
    nid = await enqueue(store)
    wrong.start()
    try:
        await state_is(store, nid, "pending", min_attempts=2)
        assert (await one(store, nid)).last_error == "SMS API answered HTTP 403"
    finally:
        await wrong.close()
    api.hang = True
    slow = worker_for(store, sms_settings(api, timeout_s=0.3))
    # A new row: the first one may be leased by a delivery the close above cancelled.
    hung = await enqueue(store)
    slow.start()
    try:
        await state_is(store, hung, "pending", min_attempts=3)
        assert "Timeout" in ((await one(store, hung)).last_error or "")
    finally:
        await slow.close()
    assert api.sent == []


def test_settings_that_cannot_work_are_refused(tmp_path: Path) -> None:
    base = settings_for(
        tmp_path,
        sms_url="https://eu.api.ovh.com/1.0",
        sms_service=SERVICE,
        sms_application_key="ak",
        sms_application_secret="as",
        sms_consumer_key="ck",
    )
    assert "sms_application_secret" not in repr(base) and "sms_consumer_key" not in repr(base)
    for bad, named in [
        (replace(base, sms_url="http://sms.example.fr/1.0"), "CONFRERE_SMS_URL"),
        (replace(base, sms_consumer_key=""), "CONFRERE_SMS_CONSUMER_KEY"),
        (replace(base, sms_service="../me"), "CONFRERE_SMS_SERVICE"),
    ]:
        with pytest.raises(ValueError, match=named):
            open_notifications(None, None, bad)  # type: ignore[arg-type]


async def test_a_node_texts_the_patient(tmp_path: Path, api: OvhSmsApi) -> None:
    await api.start()
    settings = settings_for(
        tmp_path,
        sms_url=api.base_url,
        sms_service=SERVICE,
        sms_application_key=APPLICATION_KEY,
        sms_application_secret=APPLICATION_SECRET,
        sms_consumer_key=CONSUMER_KEY,
        outbox_poll_s=0.05,
    )
    async with running_server(settings) as srv:
        await small_directory(srv.store)
        doctor = await practitioner(srv.url, srv.store)
        await srv.store.link_profile("faure", doctor.user_id)
        me = await practitioner(srv.url, srv.store)
        body = {"slot": "s-open", "motive": "m-first", "patient": PATIENT}
        r = await call(me, srv, "POST", "/v1/referrals", json=body)
        assert r.status_code == 201, r.text
        [sent] = await api.wait_for(1)
        [row] = await srv.store.notifications("sms")
        await state_is(srv.store, row.id, "sent")
    assert sent.receivers == ["+33645372653"]
    assert "Rendez-vous confirmé avec" in sent.message and "Faure" in sent.message
    assert "Patiente adressée" not in sent.message  # nothing of the referral's message
