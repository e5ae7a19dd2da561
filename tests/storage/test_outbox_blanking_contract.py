"""Secrets leave the outbox once delivered or given up: contract for every adapter."""

from __future__ import annotations

from storage import Store
from storage.outbox import NewNotification


def secret(n: int) -> NewNotification:
    data = {"code": f"12345{n}", "url": "https://x.example/r#tok", "signup_url": "s", "n": n}
    return NewNotification("email", "a@example.org", "email_code", data)


async def _data(store: Store, nid: int) -> dict[str, object]:
    [found] = [n for n in await store.notifications("email", "a@example.org") if n.id == nid]
    return found.data


async def test_sensitive_values_are_blanked_when_sent_or_given_up(store: Store) -> None:
    sent, many, retried, failed, plain = await store.enqueue_notifications(
        [*map(secret, range(4)), NewNotification("email", "a@example.org", "welcome", {})],
        1000,
    )
    await store.claim_notifications(1000, 10, lease_ms=100)
    await store.mark_notification_sent(sent, 1050)
    await store.mark_notifications_sent([many, plain], 1050)
    await store.mark_notification_failed(retried, "try later", retry_at=5000, now=1050)
    await store.mark_notification_failed(failed, "gave up", retry_at=None, now=1050)
    blank = {"code": "", "url": "", "signup_url": ""}
    assert await _data(store, sent) == {**blank, "n": 0}
    assert await _data(store, many) == {**blank, "n": 1}
    assert await _data(store, failed) == {**blank, "n": 3}
    # A retry still needs them; a row without such keys gains none.
    assert (await _data(store, retried))["code"] == "123452"
    assert await _data(store, plain) == {}
