"""Push subscriptions contract (one per device, replaced, removed only while still the
one tried), identical for every adapter."""

from __future__ import annotations

from test_store_contract import user

from storage import Store
from storage.push import PushSubscription


async def test_one_subscription_per_device(store: Store) -> None:
    alice, bob = await user(store), await user(store)
    laptop = await store.create_device(alice, "Portable", 1)
    phone = await store.create_device(alice, "Téléphone", 2)
    other = await store.create_device(bob, "Poste", 3)
    web = PushSubscription(laptop.id, alice, "webpush", "https://push.example/a", "k", "s", 10)
    await store.put_push_subscription(web)
    await store.put_push_subscription(PushSubscription(phone.id, alice, "apns", "tok", "", "", 11))
    await store.put_push_subscription(PushSubscription(other.id, bob, "fcm", "t2", "", "", 12))
    assert [s.kind for s in await store.push_subscriptions_of(alice)] == ["webpush", "apns"]
    # Subscribing again replaces; a stale "gone" for the old endpoint removes nothing.
    renewed = PushSubscription(
        laptop.id, alice, "webpush", "https://push.example/b", "k2", "s2", 20
    )
    await store.put_push_subscription(renewed)
    assert await store.delete_push_subscription(laptop.id, "https://push.example/a") is False
    subs = await store.push_subscriptions_of(alice)
    assert subs == [
        PushSubscription(phone.id, alice, "apns", "tok", "", "", 11),
        renewed,
    ]
    assert await store.delete_push_subscription(laptop.id, "https://push.example/b") is True
    assert await store.delete_push_subscription(phone.id) is True
    assert await store.delete_push_subscription(phone.id) is False
    assert await store.push_subscriptions_of(alice) == []
    assert len(await store.push_subscriptions_of(bob)) == 1
