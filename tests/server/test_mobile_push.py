"""Mobile push against a local HTTP/2 server standing in for APNs and FCM
(tests/mobile_push_server.py), which checks the request format and the auth tokens:
content-free alerts, one per device token, invalid tokens pruned, expired provider or
access tokens renewed, failures retried or given up."""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from attachment_kit import wait_until
from mobile_push_server import KEY_ID, TEAM_ID, TOPIC, MobilePushServer

from harness import settings_for
from server.notifications import (
    Apns,
    ApnsSettings,
    Backoff,
    Fcm,
    FcmSettings,
    OutboxWorker,
    PushFanout,
    open_notifications,
)
from storage import Store, open_store
from storage.outbox import NewNotification, Notification
from storage.push import PushKind, PushSubscription
from storage.types import NewUser

GOOD = "a" * 64
GONE = "b" * 64


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(f"sqlite:///{tmp_path / 'mobile.db'}")
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def push_server(tmp_path: Path) -> AsyncIterator[MobilePushServer]:
    server = MobilePushServer(tmp_path)
    await server.start()
    try:
        yield server
    finally:
        await server.close()


def trust(server: MobilePushServer) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(server.cert_file))


def apns(server: MobilePushServer) -> Apns:
    settings = ApnsSettings(
        server.apns_key.as_pem(private=True).decode(), KEY_ID, TEAM_ID, TOPIC, server.base_url
    )
    return Apns(settings, verify=trust(server))


def fcm(server: MobilePushServer) -> Fcm:
    return Fcm(FcmSettings(server.service_account(), server.base_url), verify=trust(server))


_n = iter(range(1, 1000))


async def account(store: Store) -> str:
    n = next(_n)
    new = NewUser(
        f"m{n}@example.org", "hash", "Jeanne", f"Nom{n}", "69001", "Lyon", "Cardiologie", "salarie"
    )
    return (await store.create_user(new, 1000)).id


async def device(store: Store, user_id: str, kind: PushKind, token: str) -> str:
    found = await store.create_device(user_id, "Téléphone", int(time.time() * 1000))
    await store.put_push_subscription(PushSubscription(found.id, user_id, kind, token, "", "", 1))
    return found.id


async def push_to(store: Store, user_id: str) -> int:
    data = {"room": "r1", "title": "Nouveau message dans Staff"}
    [nid] = await store.enqueue_notifications(
        [NewNotification("push", user_id, "new_message", data)], int(time.time() * 1000)
    )
    return nid


async def one(store: Store, nid: int) -> Notification:
    [found] = [n for n in await store.notifications(limit=1000) if n.id == nid]
    return found


async def state_is(store: Store, nid: int, state: str, min_attempts: int = 1) -> None:
    async def reached() -> bool:
        n = await one(store, nid)
        return n.state == state and n.attempts >= min_attempts

    await wait_until(reached, 20.0)


def worker_for(store: Store, senders: dict[str, Apns | Fcm]) -> OutboxWorker:
    return OutboxWorker(
        store,
        {"push": PushFanout(store, senders)},
        backoff=Backoff(base_ms=30, cap_ms=100, max_attempts=50),
        poll_s=0.02,
    )


async def test_apns_and_fcm_get_content_free_alerts_and_lose_dead_tokens(
    store: Store, push_server: MobilePushServer
) -> None:
    alice = await account(store)
    await device(store, alice, "apns", GOOD)
    gone_apns = await device(store, alice, "apns", GONE)
    bad_apns = await device(store, alice, "apns", "not-a-device-token")
    await device(store, alice, "fcm", "fcm-token-of-the-android-phone")
    gone_fcm = await device(store, alice, "fcm", "fcm-token-uninstalled")
    push_server.unregistered |= {GONE, "fcm-token-uninstalled"}
    worker = worker_for(store, {"apns": apns(push_server), "fcm": fcm(push_server)})
    nid = await push_to(store, alice)
    worker.start()
    try:
        received = await push_server.wait_for(2)
        await state_is(store, nid, "sent")
        assert await worker.run_once() == 0
    finally:
        await worker.close()
    assert push_server.refused == []
    by_service = {r.service: r for r in received}
    assert by_service["apns"].token == GOOD and by_service["apns"].http_version == "2"
    assert by_service["apns"].body == {
        "aps": {"alert": {"title": "Confrère", "body": "Nouveau message"}, "sound": "default"},
        "room": "r1",
    }
    message = by_service["fcm"].body["message"]
    assert message["token"] == "fcm-token-of-the-android-phone"
    assert message["notification"] == {"title": "Confrère", "body": "Nouveau message"}
    assert message["data"] == {"room": "r1"}
    assert "Staff" not in str(by_service["apns"].body) + str(message)  # not even the group
    left = {s.device_id for s in await store.push_subscriptions_of(alice)}
    assert left.isdisjoint({gone_apns, bad_apns, gone_fcm}) and len(left) == 2


async def test_expired_tokens_are_renewed_and_failures_retried(
    store: Store, push_server: MobilePushServer
) -> None:
    alice, bob = await account(store), await account(store)
    await device(store, alice, "apns", GOOD)
    await device(store, bob, "fcm", "fcm-token-of-bob")
    worker = worker_for(store, {"apns": apns(push_server), "fcm": fcm(push_server)})
    push_server.expire_next = True  # APNs: a new provider token, at once
    first = await push_to(store, alice)
    worker.start()
    try:
        await state_is(store, first, "sent")
        assert (await one(store, first)).attempts == 1
        push_server.revoke_access_tokens()  # FCM: 401, then a new access token
        second = await push_to(store, bob)
        await state_is(store, second, "sent")
        assert (await one(store, second)).attempts == 1
        push_server.script[:] = [503, 429]  # busy: retried
        third = await push_to(store, alice)
        await state_is(store, third, "sent")
        assert (await one(store, third)).attempts == 3
        push_server.script[:] = [400]  # refused: final
        fourth = await push_to(store, alice)
        await state_is(store, fourth, "sent")
    finally:
        await worker.close()
    assert [r.service for r in push_server.received] == ["apns", "fcm", "apns"]
    assert len(push_server.access_tokens) == 1


def test_settings_that_cannot_work_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="APNS_KEY_FILE"):
        Apns(ApnsSettings("not a key", KEY_ID, TEAM_ID, TOPIC))
    server = MobilePushServer(tmp_path)
    try:
        key = server.apns_key.as_pem(private=True).decode()
        with pytest.raises(ValueError, match="APNS_TOPIC"):
            Apns(ApnsSettings(key, KEY_ID, TEAM_ID, ""))
        assert "PRIVATE" not in repr(ApnsSettings(key, KEY_ID, TEAM_ID, TOPIC))
        with pytest.raises(ValueError, match="FCM_SERVICE_ACCOUNT_FILE"):
            Fcm(FcmSettings({"project_id": "x"}))
        assert "PRIVATE" not in repr(FcmSettings(server.service_account()))
    finally:
        server.sock.close()


async def test_the_settings_wire_apns_and_fcm_into_the_push_channel(tmp_path: Path) -> None:
    server = MobilePushServer(tmp_path)
    try:
        key_file = tmp_path / "AuthKey.p8"
        key_file.write_bytes(server.apns_key.as_pem(private=True))
        account_file = tmp_path / "service-account.json"
        account_file.write_text(json.dumps(server.service_account()), "utf-8")
        settings = settings_for(
            tmp_path,
            apns_key_file=str(key_file),
            apns_key_id=KEY_ID,
            apns_team_id=TEAM_ID,
            apns_topic=TOPIC,
            fcm_service_account_file=str(account_file),
        )
        notifications = open_notifications(None, None, settings)  # type: ignore[arg-type]
        try:
            fanout = notifications.worker.providers["push"]
            assert isinstance(fanout, PushFanout) and set(fanout.senders) == {"apns", "fcm"}
            assert "PRIVATE" not in repr(settings)
        finally:
            await notifications.worker.close()
        with pytest.raises(ValueError, match="CONFRERE_APNS_URL"):
            open_notifications(None, None, replace(settings, apns_url="http://apns.example"))  # type: ignore[arg-type]
    finally:
        server.sock.close()
