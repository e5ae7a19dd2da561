"""Web Push against a local push service that checks VAPID and decrypts each payload with
the subscription's keys as a browser would (tests/push_service.py): one push per
subscribed device, content-free, gone subscriptions removed, failures retried or given
up; then a whole node pushing a new message to an offline member's browser."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from attachment_kit import wait_until
from push_service import Browser, PushService

from harness import connected, practitioner, running_server, settings_for
from server.notifications import Backoff, OutboxWorker, PushFanout, WebPush, WebPushSettings
from server.notifications.webpush import b64url
from storage import Store, open_store
from storage.outbox import NewNotification, Notification
from storage.push import PushSubscription
from storage.types import NewUser

# A fixed VAPID key (base64url of 32 bytes), as an operator would configure it.
VAPID_KEY = b64url(bytes(range(1, 33)))
SUBJECT = "mailto:exploitation@confrere.example.fr"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(f"sqlite:///{tmp_path / 'push.db'}")
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def service() -> AsyncIterator[PushService]:
    found = PushService()
    await found.start()
    try:
        yield found
    finally:
        await found.close()


def worker_for(store: Store, web_push: WebPush) -> OutboxWorker:
    return OutboxWorker(
        store,
        {"push": PushFanout(store, {"webpush": web_push})},
        backoff=Backoff(base_ms=30, cap_ms=100, max_attempts=50),
        poll_s=0.02,
    )


async def subscribed(store: Store, user_id: str, browser: Browser, name: str) -> str:
    device = await store.create_device(user_id, name, int(time.time() * 1000))
    await store.put_push_subscription(
        PushSubscription(
            device.id, user_id, "webpush", browser.endpoint, browser.p256dh, browser.auth, 1
        )
    )
    return device.id


_n = iter(range(1, 1000))


async def account(store: Store) -> str:
    n = next(_n)
    new = NewUser(
        f"u{n}@example.org", "hash", "Jeanne", f"Nom{n}", "69001", "Lyon", "Cardiologie", "salarie"
    )
    return (await store.create_user(new, 1000)).id


async def one(store: Store, nid: int) -> Notification:
    [found] = [n for n in await store.notifications(limit=1000) if n.id == nid]
    return found


async def push_to(store: Store, user_id: str) -> int:
    [nid] = await store.enqueue_notifications(
        [
            NewNotification(
                "push",
                user_id,
                "new_message",
                {"room": "r1", "title": "Nouveau message dans Staff"},
            )
        ],
        int(time.time() * 1000),
    )
    return nid


async def state_is(store: Store, nid: int, state: str, min_attempts: int = 1) -> None:
    async def reached() -> bool:
        n = await one(store, nid)
        return n.state == state and n.attempts >= min_attempts

    await wait_until(reached, 20.0)


async def test_each_device_gets_it_once_and_gone_ones_are_removed(
    store: Store, service: PushService
) -> None:
    web_push = WebPush(WebPushSettings(VAPID_KEY, SUBJECT))
    service.server_key = web_push.public_key
    alice = await account(store)
    laptop, phone, old = service.subscribe(), service.subscribe(), service.subscribe()
    await subscribed(store, alice, laptop, "Portable")
    await subscribed(store, alice, phone, "Téléphone")
    old_device = await subscribed(store, alice, old, "Ancien")
    service.gone.add(old.id)
    worker = worker_for(store, web_push)
    nid = await push_to(store, alice)
    worker.start()
    try:
        pushed = await service.wait_for(2)
        await state_is(store, nid, "sent")
        assert await worker.run_once() == 0
    finally:
        await worker.close()
    assert service.refused == []
    assert sorted(p.subscription for p in pushed) == sorted([laptop.id, phone.id])
    assert all(p.payload == {"title": "Nouveau message dans Staff", "room": "r1"} for p in pushed)
    assert pushed[0].headers["urgency"] == "high" and int(pushed[0].headers["ttl"]) > 0
    remaining = {s.device_id for s in await store.push_subscriptions_of(alice)}
    assert old_device not in remaining and len(remaining) == 2


async def test_failures_are_retried_or_given_up(store: Store, service: PushService) -> None:
    web_push = WebPush(WebPushSettings(VAPID_KEY, SUBJECT))
    alice, bob = await account(store), await account(store)
    browser = service.subscribe()
    await subscribed(store, alice, browser, "Portable")
    await subscribed(store, bob, service.subscribe(), "Portable")
    service.script[:] = [503, 429]
    worker = worker_for(store, web_push)
    nid = await push_to(store, alice)
    worker.start()
    try:
        await service.wait_for(1)
        await state_is(store, nid, "sent")
        assert (await one(store, nid)).attempts == 3
        service.script[:] = [400]
        refused = await push_to(store, bob)
        await state_is(store, refused, "sent")  # a refusal is final, not retried
        nobody = await push_to(store, await account(store))  # no subscription: nothing to do
        await state_is(store, nobody, "sent")
    finally:
        await worker.close()
    assert len(service.pushed) == 1


async def test_a_push_service_down_is_retried(store: Store) -> None:
    down = PushService()  # bound, never listening
    try:
        alice = await account(store)
        await subscribed(store, alice, down.subscribe(), "Portable")
        worker = worker_for(store, WebPush(WebPushSettings(VAPID_KEY, SUBJECT)))
        nid = await push_to(store, alice)
        worker.start()
        try:
            await state_is(store, nid, "pending", min_attempts=2)
            assert "push service unreachable" in ((await one(store, nid)).last_error or "")
        finally:
            await worker.close()
    finally:
        await down.close()


def test_settings_that_cannot_work_are_refused() -> None:
    with pytest.raises(ValueError, match="VAPID_PRIVATE_KEY"):
        WebPush(WebPushSettings("not a key", SUBJECT))
    with pytest.raises(ValueError, match="VAPID_SUBJECT"):
        WebPush(WebPushSettings(VAPID_KEY, "exploitation@example.fr"))
    assert VAPID_KEY not in repr(WebPushSettings(VAPID_KEY, SUBJECT))


async def test_a_node_pushes_a_new_message_to_an_offline_browser(
    tmp_path: Path, service: PushService
) -> None:
    settings = settings_for(
        tmp_path,
        vapid_private_key=VAPID_KEY,
        vapid_subject=SUBJECT,
        push_interval_s=0.05,
        outbox_poll_s=0.05,
    )
    async with running_server(settings) as srv:
        alice = await practitioner(srv.url, srv.store)
        bob = await practitioner(srv.url, srv.store)
        browser = service.subscribe()
        auth = {"Authorization": f"Bearer {bob.token}"}
        async with httpx.AsyncClient(base_url=srv.url, timeout=30, headers=auth) as http:
            config = (await http.get("/v1/push/config")).json()
            service.server_key = config["vapid_public_key"]
            assert service.server_key is not None and len(service.server_key) == 87
            good = {
                "kind": "webpush",
                "endpoint": browser.endpoint,
                "p256dh": browser.p256dh,
                "auth": browser.auth,
            }
            for bad, field in [
                ({**good, "endpoint": "http://push.example.org/x"}, "endpoint"),
                ({**good, "p256dh": b64url(b"\x04" + bytes(64))}, "p256dh"),
                ({**good, "auth": "AAAA"}, "p256dh"),
                ({"kind": "apns", "token": "x y"}, "token"),
                ({**good, "kind": "sms"}, "kind"),
            ]:
                r = await http.put("/v1/push/subscription", json=bad)
                assert r.status_code == 400 and r.json()["field"] == field, r.text
            r = await http.put("/v1/push/subscription", json=good)
            assert r.status_code == 204, r.text
        a = await connected(alice)
        try:
            room = await a.create_room("direct", [bob.user_id])
            await a.send(room.id, b"un message chiffre que le serveur ne lit pas")
            [push] = await service.wait_for(1)
        finally:
            await a.close()
    assert push.payload == {"title": "Nouveau message dans une conversation", "room": room.id}
    assert service.refused == []
