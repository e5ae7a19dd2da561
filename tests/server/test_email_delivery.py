"""E-mail over SMTP against a real SMTP server (aiosmtpd, tests/smtp_server.py): STARTTLS
and implicit TLS with authentication, the French bodies and headers, and what each kind
of failure makes the outbox do (retry, or give up at once); then a whole node sending
the sign-up code, a guest invitation and a patient's appointment e-mail."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import replace
from email.message import EmailMessage
from pathlib import Path

import pytest
from attachment_kit import wait_until
from directory_kit import PATIENT, call, small_directory
from smtp_server import SmtpServer

from clients.python import EncryptedClient
from clients.python.rest import confirm_email, log_in, sign_up
from harness import PASSWORD, practitioner, running_server, settings_for
from server.notifications import Backoff, OutboxWorker, SmtpProvider, SmtpSettings
from server.notifications.templates import french_datetime, render_email, render_sms
from storage import Store, open_store
from storage.outbox import NewNotification, Notification

SENDER = "Confrère <no-reply@confrere.example.fr>"
REPLY_TO = "support@confrere.example.fr"
LOGIN = ("confrere", "un mot de passe SMTP")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(f"sqlite:///{tmp_path / 'mail.db'}")
    try:
        yield opened
    finally:
        await opened.close()


def smtp_settings(server: SmtpServer, **overrides: object) -> SmtpSettings:
    base = SmtpSettings(
        host="127.0.0.1",
        port=server.port,
        security=server.security,
        username=LOGIN[0] if server.credentials else "",
        password=LOGIN[1] if server.credentials else "",
        sender=SENDER,
        reply_to=REPLY_TO,
        timeout_s=5.0,
        ca_file=str(server.cert_file),
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


def worker_for(store: Store, settings: SmtpSettings, max_attempts: int = 50) -> OutboxWorker:
    return OutboxWorker(
        store,
        {"email": SmtpProvider(settings)},
        backoff=Backoff(base_ms=30, cap_ms=100, max_attempts=max_attempts),
        poll_s=0.02,
    )


async def one(store: Store, nid: int) -> Notification:
    [found] = [n for n in await store.notifications(limit=1000) if n.id == nid]
    return found


async def enqueue(store: Store, template: str = "email_code", **data: object) -> int:
    [nid] = await store.enqueue_notifications(
        [NewNotification("email", "dr.martin@example.org", template, data or {"code": "482913"})],
        int(time.time() * 1000),
    )
    return nid


async def state_is(store: Store, nid: int, state: str, min_attempts: int = 1) -> None:
    async def reached() -> bool:
        n = await one(store, nid)
        return n.state == state and n.attempts >= min_attempts

    await wait_until(reached, 20.0)


def bodies(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    page = message.get_body(("html",))
    assert text is not None and page is not None
    return str(text.get_content()), str(page.get_content())


# -- the texts (sans-I/O)


def test_every_template_has_french_text_and_escaped_html() -> None:
    mail = render_email(
        "identity_rejected", {"reason": "Photo floue <script>alert(1)</script> & illisible"}
    )
    assert mail.subject == "Votre demande de vérification d'identité n'a pas abouti"
    assert "Motif : Photo floue <script>" in mail.text
    assert "<script>" not in mail.html and "&lt;script&gt;" in mail.html
    invitation = render_email(
        "guest_invitation",
        {
            "inviter": "Jeanne Martin",
            "room_kind": "un groupe",
            "signup_url": "https://c.example.fr/inscription?invitation=1&email=a%40b.fr",
            "expires_at": 1_767_225_600_000,
            "reminder": True,
        },
    )
    assert invitation.subject == "Rappel : Jeanne Martin vous invite sur Confrère"
    assert 'href="https://c.example.fr/inscription?invitation=1&amp;email=a%40b.fr"' in (
        invitation.html
    )
    assert "valable jusqu'au 1 janvier 2026" in invitation.text
    # 2025-12-03 15:00 UTC is 16 h in Paris (winter time), 2026-07-01 08:30 UTC 10 h 30.
    assert french_datetime(1_764_774_000_000) == "mercredi 3 décembre 2025 à 16 h 00"
    assert french_datetime(1_782_894_600_000) == "mercredi 1 juillet 2026 à 10 h 30"
    sms = render_sms(
        "appointment_booked",
        {
            "practitioner": "Dr Paul Faure",
            "specialty": "Cardiologue",
            "starts_at": 1_764_774_000_000,
            "place": None,
        },
    )
    assert sms == (
        "Confrère : Rendez-vous confirmé avec Dr Paul Faure (Cardiologue) "
        "le mercredi 3 décembre 2025 à 16 h 00."
    )


def test_settings_that_cannot_work_are_refused() -> None:
    good = SmtpSettings(host="smtp.example.fr", sender=SENDER)
    SmtpProvider(good)
    for bad, named in [
        (replace(good, security="ssl"), "SMTP_SECURITY"),
        (replace(good, security="none"), "loopback"),
        (replace(good, sender="no address"), "SMTP_FROM"),
        (replace(good, username="u"), "SMTP_PASSWORD"),
        (replace(good, reply_to="nobody"), "SMTP_REPLY_TO"),
    ]:
        with pytest.raises(ValueError, match=named):
            SmtpProvider(bad)
    assert "secret" not in repr(replace(good, password="secret"))


# -- the provider against a real SMTP server


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_delivered_once_over_tls_with_authentication(
    store: Store, tmp_path: Path, security: str
) -> None:
    server = SmtpServer(tmp_path, security=security, credentials=LOGIN)
    await server.start()
    worker = worker_for(store, smtp_settings(server))
    nid = await enqueue(store)
    worker.start()
    try:
        [got] = await server.wait_for(1)
        await state_is(store, nid, "sent")
        assert await worker.run_once() == 0
    finally:
        await worker.close()
        await server.close()
    assert len(server.received) == 1 and (await one(store, nid)).attempts == 1
    assert got.authenticated_as == LOGIN[0]
    assert got.sender == "no-reply@confrere.example.fr"
    assert got.recipients == ["dr.martin@example.org"]
    message = got.message
    assert message["From"] == SENDER and message["Reply-To"] == REPLY_TO
    assert message["To"] == "dr.martin@example.org"
    assert message["Subject"] == "Votre code de vérification Confrère"
    created = (await one(store, nid)).created_at
    assert message["Message-ID"] == f"<outbox.{nid}.{created}@confrere.example.fr>"
    text, page = bodies(message)
    assert "Votre code de vérification : 482913" in text and "Bonjour," in text
    assert "482913" in page and '<html lang="fr">' in page


async def test_relay_down_then_up_is_retried_and_delivered_once(
    store: Store, tmp_path: Path
) -> None:
    server = SmtpServer(tmp_path)  # bound, not listening: connections refused
    worker = worker_for(store, smtp_settings(server))
    nid = await enqueue(store)
    worker.start()
    try:
        await state_is(store, nid, "pending", min_attempts=2)
        assert "SMTP unreachable" in ((await one(store, nid)).last_error or "")
        await server.start()
        await server.wait_for(1)
        await state_is(store, nid, "sent")
        assert await worker.run_once() == 0
    finally:
        await worker.close()
        await server.close()
    assert len(server.received) == 1


async def test_4xx_is_retried_5xx_given_up_at_once(store: Store, tmp_path: Path) -> None:
    # Greylisted once at RCPT, refused once after DATA; then 550 for an unknown mailbox.
    server = SmtpServer(
        tmp_path,
        script=["451 4.7.1 Greylisted, try again later", "250", "452 4.3.1 Busy", "250", "250"],
    )
    await server.start()
    worker = worker_for(store, smtp_settings(server))
    nid = await enqueue(store)
    worker.start()
    try:
        await server.wait_for(1)
        await state_is(store, nid, "sent")
        sent = await one(store, nid)
        assert sent.attempts == 3
        server.handler.script[:] = ["550 5.1.1 No such user"]
        refused = await enqueue(store)
        await state_is(store, refused, "failed")
        server.handler.script[:] = ["250", "554 5.7.1 Message refused"]
        rejected = await enqueue(store, "identity_approved", method="manual")
        await state_is(store, rejected, "failed")
    finally:
        await worker.close()
        await server.close()
    assert len(server.received) == 1
    gone = await one(store, refused)
    assert gone.attempts == 1 and gone.last_error == "SMTP recipient refused: 550"
    assert (await one(store, rejected)).last_error == "SMTP SMTPDataError: 554"
    assert gone.data == {"code": ""}  # the code is blanked once it cannot be delivered


async def test_timeouts_and_refused_logins_are_retried(store: Store, tmp_path: Path) -> None:
    hung = SmtpServer(tmp_path, silent=True)
    await hung.start()
    worker = worker_for(store, smtp_settings(hung, timeout_s=0.3))
    nid = await enqueue(store)
    worker.start()
    try:
        await state_is(store, nid, "pending", min_attempts=2)
        assert "Timeout" in ((await one(store, nid)).last_error or "")
    finally:
        await worker.close()
        await hung.close()
    server = SmtpServer(tmp_path, credentials=LOGIN)
    await server.start()
    wrong = worker_for(store, smtp_settings(server, password="not the password"))
    other = await enqueue(store)
    wrong.start()
    try:
        await state_is(store, other, "pending", min_attempts=2)
        assert (await one(store, other)).last_error == "SMTP authentication refused: 535"
    finally:
        await wrong.close()
        await server.close()
    assert server.received == []


async def test_an_unknown_certificate_is_not_trusted(store: Store, tmp_path: Path) -> None:
    server = SmtpServer(tmp_path, credentials=LOGIN)
    await server.start()
    worker = worker_for(store, smtp_settings(server, ca_file=""))  # the system's CAs
    nid = await enqueue(store)
    worker.start()
    try:
        await state_is(store, nid, "pending", min_attempts=2)
    finally:
        await worker.close()
        await server.close()
    assert server.received == []  # no password sent to a server it could not verify


# -- a whole node


async def test_a_node_mails_the_code_an_invitation_and_an_appointment(tmp_path: Path) -> None:
    server = SmtpServer(tmp_path, credentials=LOGIN)
    await server.start()
    settings = settings_for(
        tmp_path,
        smtp_host="127.0.0.1",
        smtp_port=server.port,
        smtp_username=LOGIN[0],
        smtp_password=LOGIN[1],
        smtp_from=SENDER,
        smtp_reply_to=REPLY_TO,
        smtp_ca_file=str(server.cert_file),
        outbox_poll_s=0.05,
        outbox_log=str(tmp_path / "outbox.jsonl"),
        public_url="https://confrere.example.fr",
    )
    try:
        async with running_server(settings) as srv:
            # The sign-up code.
            await sign_up(
                srv.url,
                email="dr.lemoine@example.org",
                password=PASSWORD,
                first_name="Claire",
                last_name="Lemoine",
                postcode="75011",
                city="Paris",
                specialty="Médecine générale",
                practice_mode="liberal",
            )
            [code_mail] = await server.wait_for(1)
            assert code_mail.recipients == ["dr.lemoine@example.org"]
            text, _ = bodies(code_mail.message)
            code = text.split("Votre code de vérification : ")[1][:6]
            account = await log_in(srv.url, "dr.lemoine@example.org", PASSWORD)
            await confirm_email(account, code)  # the code that came by mail works
            await srv.store.set_verified(account.user_id, True)
            # A guest invitation.
            client = EncryptedClient(account, tmp_path / "claire.key")
            await client.connect()
            try:
                room = await client.create_room("group", [], name="Staff")
                await client.invite(room.id, emails=["invite@example.org"])
            finally:
                await client.close()
            invitation = (await server.wait_for(2))[1]
            assert invitation.recipients == ["invite@example.org"]
            assert invitation.message["Subject"] == "Claire Lemoine vous invite sur Confrère"
            text, page = bodies(invitation.message)
            assert "https://confrere.example.fr/inscription?invitation=1&email=invite%40" in text
            assert "Staff" not in text + page  # nothing of the room's content
            # A patient's appointment.
            await small_directory(srv.store)
            doctor = await practitioner(srv.url, srv.store)
            await srv.store.link_profile("faure", doctor.user_id)
            r = await call(
                account,
                srv,
                "POST",
                "/v1/referrals",
                json={"slot": "s-open", "motive": "m-first", "patient": PATIENT},
            )
            assert r.status_code == 201, r.text
            mails = await server.wait_for(4)  # the doctor's sign-up code came first
            [appointment] = [m for m in mails if m.recipients == [PATIENT["email"]]]
            assert appointment.message["Subject"] == "Confirmation de votre rendez-vous"
            text, _ = bodies(appointment.message)
            assert "Rendez-vous confirmé avec" in text and "Faure" in text
            await wait_until(lambda: _nothing_pending(srv.store), 20.0)
        sink = read(Path(settings.outbox_log))  # the patient's SMS went there
        assert '"channel": "email"' not in sink and '"channel": "sms"' in sink
    finally:
        await server.close()
    assert len(server.received) == 4  # each once


def read(path: Path) -> str:
    return path.read_text("utf-8")


async def _nothing_pending(store: Store) -> bool:
    return all(n.state == "sent" for n in await store.notifications("email", limit=1000))
