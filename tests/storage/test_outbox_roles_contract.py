"""Outbox and platform roles contract, identical for every adapter."""

from __future__ import annotations

import asyncio

import pytest
from test_store_contract import user

from storage import NotFound, Store
from storage.outbox import NewNotification


def note(recipient: str, n: int = 0) -> NewNotification:
    return NewNotification("email", recipient, "invitation", {"room": "r", "n": n, "é": "ü"})


async def test_enqueued_notifications_are_claimed_once_per_lease(store: Store) -> None:
    ids = await store.enqueue_notifications([note("a@example.org", i) for i in range(3)], 1000)
    assert len(ids) == 3 and ids == sorted(ids)
    assert await store.outbox_backlog(1000) == 3

    claimed = await store.claim_notifications(1000, 2, lease_ms=500)
    assert [n.id for n in claimed] == ids[:2]
    assert all(n.attempts == 1 and n.state == "pending" for n in claimed)
    assert claimed[0].data == {"room": "r", "n": 0, "é": "ü"}
    # Leased rows are not due again until the lease ends; the third one is.
    again = await store.claim_notifications(1100, 10, lease_ms=500)
    assert [n.id for n in again] == ids[2:]
    assert await store.claim_notifications(1200, 10, lease_ms=500) == []
    # The lease ended without a verdict (a crashed worker): the rows come back.
    back = await store.claim_notifications(1500, 10, lease_ms=500)
    assert [n.id for n in back] == ids[:2] and back[0].attempts == 2


async def test_sent_failed_and_retried_notifications(store: Store) -> None:
    first, second = await store.enqueue_notifications([note("a@x.org"), note("b@x.org")], 1000)
    await store.claim_notifications(1000, 10, lease_ms=100)
    await store.mark_notification_sent(first, 1050)
    await store.mark_notification_failed(second, "connection refused", retry_at=5000, now=1050)
    assert await store.outbox_backlog(4999) == 0
    assert [n.id for n in await store.claim_notifications(5000, 10, 100)] == [second]
    await store.mark_notification_failed(second, "gone", retry_at=None, now=5050)
    assert await store.claim_notifications(10**9, 10, 100) == []

    rows = {n.id: n for n in await store.notifications()}
    assert rows[first].state == "sent" and rows[first].sent_at == 1050
    assert rows[second].state == "failed" and rows[second].last_error == "gone"
    assert [n.id for n in await store.notifications(recipient="b@x.org")] == [second]
    assert await store.notifications(channel="sms") == []


async def test_concurrent_claims_never_share_a_row(store: Store) -> None:
    await store.enqueue_notifications([note("a@x.org", i) for i in range(40)], 1000)
    batches = await asyncio.gather(
        *(store.claim_notifications(1000, 7, lease_ms=10_000) for _ in range(8))
    )
    ids = [n.id for batch in batches for n in batch]
    assert len(ids) == len(set(ids)) == 40


async def test_roles_are_granted_idempotently_and_revoked(store: Store) -> None:
    uid = await user(store)
    assert await store.roles_of(uid) == frozenset()
    await store.grant_role(uid, "reviewer", 1000)
    await store.grant_role(uid, "reviewer", 2000)
    await store.grant_role(uid, "admin", 2000)
    assert await store.roles_of(uid) == {"reviewer", "admin"}
    assert await store.revoke_role(uid, "reviewer")
    assert not await store.revoke_role(uid, "reviewer")
    assert await store.roles_of(uid) == {"admin"}
    with pytest.raises(NotFound):
        await store.grant_role("nobody", "admin", 1000)
