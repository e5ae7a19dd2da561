"""The notification outbox worker, its providers (log sink, signed webhooks), and the
offline push entries, against real stores, a real HTTP receiver and a real server."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, cast

import pytest
from attachment_kit import wait_until
from hypothesis import given, settings
from hypothesis import strategies as st
from services_pg import PostgresServer, drop_database, fresh_database
from webhook_receiver import WebhookReceiver

from harness import connected, practitioner, running_server, sealed, settings_for
from server.notifications import (
    SIGNATURE_HEADER,
    Backoff,
    LogSink,
    OfflinePush,
    OutboxWorker,
    WebhookProvider,
    check_webhook_url,
    open_notifications,
    push_title,
    sign,
    verify,
)
from storage import Store, open_store
from storage.outbox import NewNotification, Notification
from storage.types import Room

SECRET = b"webhook secret for tests"


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        opened = await open_store(f"sqlite:///{tmp_path / 'outbox.db'}")
        try:
            yield opened
        finally:
            await opened.close()
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = await fresh_database(server.url)
    opened = await open_store(url)
    try:
        yield opened
    finally:
        await opened.close()
        await drop_database(server.url, url)


async def until(check: Callable[[], Awaitable[bool]]) -> None:
    await wait_until(check, 20.0)


async def one(store: Store, nid: int) -> Notification:
    [found] = [n for n in await store.notifications(limit=1000) if n.id == nid]
    return found


def read_sink(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


# -- signatures (sans-I/O)


def test_signature_round_trip_and_refusals() -> None:
    body = b'{"type":"guest.promoted"}'
    now = int(time.time())
    header = sign(SECRET, now, body)
    assert header.startswith(f"t={now},v1=")
    assert verify(SECRET, header, body, now)
    assert verify(SECRET, f"v1=deadbeef,{header}", body, now + 299)  # rotation: any v1
    assert not verify(SECRET, header, body + b" ", now)  # body changed
    assert not verify(b"other secret", header, body, now)
    assert not verify(SECRET, header, body, now + 301)  # replayed later
    assert not verify(SECRET, header.replace(f"t={now}", f"t={now + 1}"), body, now)
    for bad in ("", "t=,v1=", "v1=abc", "t=abc,v1=00", "garbage", "t=²,v1=00", "t=1,v1=é"):
        assert not verify(SECRET, bad, body, now)
    mac = header.partition("v1=")[2]
    assert not verify(SECRET, f"t={now},v1=é{mac[1:]}", body, now)  # non-ASCII: false


@settings(max_examples=300, deadline=None)
@given(header=st.text(), body=st.binary(max_size=64), now=st.integers(0, 2**40))
def test_verify_never_raises(header: str, body: bytes, now: int) -> None:
    assert verify(SECRET, header, body, now) in (True, False)


@settings(max_examples=200, deadline=None)
@given(
    t=st.text(alphabet=st.characters(categories=["Nd", "No"]), min_size=1, max_size=14),
    mac=st.text(max_size=70),
)
def test_verify_never_raises_on_unicode_digits(t: str, mac: str) -> None:
    assert verify(SECRET, f"t={t},v1={mac}", b"{}", 0) in (True, False)


def test_backoff_doubles_up_to_the_cap_then_gives_up() -> None:
    backoff = Backoff(base_ms=100, cap_ms=1000, max_attempts=6)
    delays = [backoff.retry_at(0, n, 0.999999) for n in range(1, 6)]
    assert delays == [99, 199, 399, 799, 999]
    assert backoff.retry_at(0, 1, 0.0) == 75  # jitter spreads over the last quarter
    assert backoff.retry_at(0, 6, 0.5) is None


# -- the worker


async def test_log_sink_receives_each_notification_once(store: Store, tmp_path: Path) -> None:
    sink = tmp_path / "sink" / "outbox.jsonl"
    log_sink = LogSink(sink)
    worker = OutboxWorker(store, {"email": log_sink, "sms": log_sink}, poll_s=0.05)
    ids = await store.enqueue_notifications(
        [
            NewNotification("email", "dr.a@example.org", "email_code", {"code": "123456"}),
            NewNotification("sms", "+33600000000", "booking", {"at": "lundi 9 h"}),
        ],
        int(time.time() * 1000),
    )
    worker.start()
    try:
        await until(lambda: asyncio.sleep(0, len(read_sink(sink)) == 2))
        await until(lambda: _all_sent(store, ids))
    finally:
        await worker.close()
    lines = sorted(read_sink(sink), key=lambda r: int(str(r["id"])))  # delivered concurrently
    assert [(r["id"], r["channel"], r["recipient"], r["template"]) for r in lines] == [
        (ids[0], "email", "dr.a@example.org", "email_code"),
        (ids[1], "sms", "+33600000000", "booking"),
    ]
    assert lines[0]["data"] == {"code": "123456"}
    assert sink.stat().st_mode & 0o777 == 0o600
    assert await worker.run_once() == 0  # nothing left: sent rows are never claimed again


async def _all_sent(store: Store, ids: list[int]) -> bool:
    return all([(await one(store, i)).state == "sent" for i in ids])


async def test_webhook_receiver_down_then_up_is_delivered_once(store: Store) -> None:
    receiver = WebhookReceiver()
    worker = OutboxWorker(
        store,
        {"webhook": WebhookProvider(SECRET, timeout_s=5)},
        backoff=Backoff(base_ms=50, cap_ms=200, max_attempts=50),
        poll_s=0.02,
    )
    data = {"user": "u1", "rooms": [{"room": "r1", "seq": 4}]}
    [nid] = await store.enqueue_notifications(
        [NewNotification("webhook", receiver.url, "guest.promoted", data)], int(time.time() * 1000)
    )
    worker.start()
    try:
        # Down: connections refused; the worker retries with backoff.
        async def failed_twice() -> bool:
            n = await one(store, nid)
            return n.attempts >= 2 and n.state == "pending" and n.last_error is not None

        await until(failed_twice)
        assert "unreachable" in ((await one(store, nid)).last_error or "")
        await receiver.start()  # up
        [got] = await receiver.wait_for(1)
        await until(lambda: _all_sent(store, [nid]))
        assert await worker.run_once() == 0
    finally:
        await worker.close()
        await receiver.close()
    assert len(receiver.received) == 1  # once, whatever the retries before
    sent = await one(store, nid)
    assert sent.state == "sent" and sent.attempts >= 3 and sent.sent_at is not None
    assert got.headers["confrere-delivery"] == str(nid)
    assert got.headers["confrere-event"] == "guest.promoted"
    assert verify(SECRET, got.headers[SIGNATURE_HEADER.lower()], got.body, int(time.time()))
    assert json.loads(got.body) == {
        "id": nid,
        "type": "guest.promoted",
        "created_at": sent.created_at,
        "data": data,
    }


async def test_a_notification_is_given_up_after_its_attempts(store: Store) -> None:
    receiver = WebhookReceiver()  # never started: always refused
    worker = OutboxWorker(
        store,
        {"webhook": WebhookProvider(SECRET, timeout_s=5)},
        backoff=Backoff(base_ms=10, cap_ms=20, max_attempts=3),
        poll_s=0.02,
    )
    [nid, no_provider] = await store.enqueue_notifications(
        [
            NewNotification("webhook", receiver.url, "guest.promoted", {}),
            NewNotification("push", "u1", "new_message", {}),
        ],
        int(time.time() * 1000),
    )
    worker.start()
    try:

        async def both_failed() -> bool:
            return all([(await one(store, i)).state == "failed" for i in (nid, no_provider)])

        await until(both_failed)
    finally:
        await worker.close()
        await receiver.close()
    assert (await one(store, nid)).attempts == 3
    assert (await one(store, no_provider)).attempts == 1  # no provider: no point retrying


# -- offline push


def test_push_titles_name_the_kind_of_room_only() -> None:
    """Names are end-to-end encrypted (and a case's may name the patient): a push says
    which kind of room, nothing more."""

    def room(kind: str, name: bytes | None) -> Room:
        return Room("r", kind, name, "open", None, "u", 0, 0)

    assert push_title(room("group", b"\x01sealed")) == "Nouveau message dans un groupe"
    assert push_title(room("group", None)) == "Nouveau message dans un groupe"
    assert push_title(room("direct", None)) == "Nouveau message dans une conversation"
    assert (
        push_title(room("patient_case", b"\x01sealed")) == "Nouveau message dans un dossier patient"
    )


async def test_offline_members_get_one_content_free_push(tmp_path: Path) -> None:
    # outbox_log unset: the default log sink, beside the SQLite database.
    settings = settings_for(tmp_path, push_interval_s=0.05, outbox_poll_s=0.05, outbox_log="")
    async with running_server(settings) as srv:
        alice = await practitioner(srv.url, srv.store)
        bob = await practitioner(srv.url, srv.store)  # never connects: offline
        carol = await practitioner(srv.url, srv.store)
        a, c = await connected(alice), await connected(carol)
        try:
            room = await a.create_room("group", [bob.user_id, carol.user_id])
            secret_bodies = [f"texte en clair {i}".encode() for i in range(3)]
            for body in secret_bodies:
                await a.send(room.id, sealed(body))
            push = srv.services.notifications
            assert push is not None

            async def pushed() -> bool:
                return bool(await srv.store.notifications("push", bob.user_id))

            await until(pushed)
            await until(lambda: asyncio.sleep(0, not push.push._pending))
            [entry] = await srv.store.notifications("push", bob.user_id)
            assert entry.template == "new_message"
            assert entry.data == {"room": room.id, "title": "Nouveau message dans un groupe"}
            assert await srv.store.notifications("push", alice.user_id) == []  # the sender
            assert await srv.store.notifications("push", carol.user_id) == []  # online
            # Delivered through the default provider: the log sink beside the database.
            sink = tmp_path / "outbox.jsonl"
            await until(
                lambda: asyncio.sleep(0, any(r["channel"] == "push" for r in read_sink(sink)))
            )
            text = sink.read_text("utf-8")
            assert all(body.decode() not in text for body in secret_bodies)
        finally:
            await a.close()
            await c.close()


def test_webhooks_need_a_secret_and_http_urls(tmp_path: Path) -> None:
    for overrides in (
        {"webhook_urls": ("https://hooks.example.org/x",)},  # no secret
        {"webhook_urls": ("ftp://hooks.example.org/x",), "webhook_secret": "s"},
        {"webhook_urls": ("http://hooks.example.org/x",), "webhook_secret": "s"},  # in clear
        {"webhook_urls": ("http://10.0.0.1/x",), "webhook_secret": "s"},
        {"webhook_urls": ("https:///x",), "webhook_secret": "s"},
    ):
        with pytest.raises(ValueError):
            open_notifications(None, None, settings_for(tmp_path, **overrides))  # type: ignore[arg-type]
    for url in ("https://hooks.example.org/x", "http://127.0.0.1:8080/x", "http://[::1]/x"):
        check_webhook_url(url)
    check_webhook_url("http://localhost/x")


async def test_marking_several_sent_at_once(store: Store) -> None:
    now = int(time.time() * 1000)
    ids = await store.enqueue_notifications(
        [NewNotification("email", f"m{i}@example.org", "t", {}) for i in range(3)], now
    )
    claimed = await store.claim_notifications(now, 10, 60_000)
    assert sorted(n.id for n in claimed) == ids
    await store.mark_notifications_sent(ids[:2], now + 5)
    states = [(await one(store, i)).state for i in ids]
    assert states == ["sent", "sent", "pending"]
    assert (await one(store, ids[0])).sent_at == now + 5
    await store.mark_notifications_sent([], now + 6)  # nothing to do, no error


def test_push_cooldowns_are_a_bounded_lru() -> None:
    """Past ``max_cooldowns`` the least recently pushed (user, room) is forgotten, even
    within its cooldown: memory stays bounded whatever the traffic."""
    push = OfflinePush(cast(Any, None), cast(Any, None), max_cooldowns=3)
    for i in range(5):
        push._remember((f"u{i}", "r"), float(i))
    assert push.cooldowns() == 3
    push._remember(("u2", "r"), 10.0)  # pushed again: the most recent now
    push._remember(("u9", "r"), 11.0)
    assert list(push._pushed) == [("u4", "r"), ("u2", "r"), ("u9", "r")]
