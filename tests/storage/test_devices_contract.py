"""Cross-signing and device management in the store (storage/devices.py), identical on
every adapter: identity keys, device signatures kept with their bundle only, last seen,
rename, and revocation in one transaction."""

from __future__ import annotations

import pytest
from test_store_contract import user

from storage import NotFound, Store
from storage.types import Session


async def test_identity_is_set_once_and_replaced_only_with_reset(store: Store) -> None:
    a, b = await user(store), await user(store)
    d = await store.create_device(a, "laptop", 1)
    assert await store.identities([a, b]) == []
    assert await store.put_identity(a, b"identity-1", 10, reset=False)
    assert await store.put_identity(a, b"identity-1", 11, reset=False)  # the same: no change
    await store.put_device_keys(a, d.id, b"bundle", 12, b"signature")
    # A different key without reset: refused, nothing changed.
    assert not await store.put_identity(a, b"identity-2", 13, reset=False)
    found = await store.identities([b, a, a, "nobody"])
    assert [(k.user_id, k.record, k.updated_at) for k in found] == [(a, b"identity-1", 10)]
    assert (await store.device_keys([a]))[0].signature == b"signature"
    # With reset: replaced, and the device signatures of the old key dropped.
    assert await store.put_identity(a, b"identity-2", 14, reset=True)
    assert [k.record for k in await store.identities([a])] == [b"identity-2"]
    assert (await store.device_keys([a]))[0].signature is None


async def test_a_signature_stays_with_its_bundle_only(store: Store) -> None:
    a, c = await user(store), await user(store)
    d1 = await store.create_device(a, "laptop", 1)
    d2 = await store.create_device(a, "phone", 2)
    await store.put_device_keys(a, d1.id, b"bundle-1", 10, b"sig-1")
    await store.put_device_keys(a, d1.id, b"bundle-1", 11)  # same bundle again: kept
    assert (await store.device_keys([a]))[0].signature == b"sig-1"
    await store.put_device_keys(a, d1.id, b"bundle-1b", 12)  # new keys: unverified again
    assert (await store.device_keys([a]))[0].signature is None
    # Signing another device of the user, only over the bundle that was verified.
    await store.put_device_keys(a, d2.id, b"bundle-2", 13)
    assert not await store.sign_device(a, d2.id, b"an-older-bundle", b"sig-2", 14)
    assert not await store.sign_device(c, d2.id, b"bundle-2", b"sig-2", 14)  # not c's
    assert await store.sign_device(a, d2.id, b"bundle-2", b"sig-2", 15)
    signed = {k.device_id: k.signature for k in await store.device_keys([a])}
    assert signed == {d1.id: None, d2.id: b"sig-2"}


async def test_devices_are_seen_renamed_and_only_by_their_owner(store: Store) -> None:
    a, c = await user(store), await user(store)
    d = await store.create_device(a, "laptop", 1)
    assert d.last_seen_at is None
    other = await store.create_device(c, "phone", 2)
    await store.touch_devices({d.id: 50, other.id: 60, "no-such-device": 70})
    seen = await store.device(d.id)
    assert seen is not None and seen.last_seen_at == 50
    seen_other = await store.device(other.id)
    assert seen_other is not None and seen_other.last_seen_at == 60
    renamed = await store.rename_device(a, d.id, "Cabinet")
    assert renamed is not None and (renamed.name, renamed.last_seen_at) == ("Cabinet", 50)
    assert await store.rename_device(c, d.id, "Volé") is None
    assert await store.rename_device(a, "no-such-device", "x") is None
    assert [x.name for x in await store.devices_of(a)] == ["Cabinet"]


async def test_revoking_a_device_removes_every_way_in_and_tells_its_rooms(store: Store) -> None:
    a, b, c = await user(store), await user(store), await user(store)
    d1 = await store.create_device(a, "laptop", 1)
    d2 = await store.create_device(a, "phone", 2)
    room1, _ = await store.create_room("group", a, [b], b"G", None, 3)
    room2, _ = await store.create_room("direct", b, [a], None, None, 4)
    await store.create_room("group", b, [c], b"H", None, 5)  # not a's: untouched
    await store.create_session(Session(b"s" * 32, a, d2.id, 6, 10**12))
    await store.create_session(Session(b"t" * 32, a, d1.id, 6, 10**12))
    await store.put_device_keys(a, d2.id, b"bundle", 7, b"sig")
    await store.push_to_device(d2.id, b, "dev-b", b"queued", 8)
    assert await store.revoke_device(c, d2.id, 9) is None  # someone else's device
    revoked = await store.revoke_device(a, d2.id, 9)
    assert revoked is not None and revoked.device.id == d2.id
    assert revoked.sessions == [b"s" * 32]
    assert sorted((e.room_id, e.kind, e.meta["device"]) for e in revoked.events) == sorted(
        [(room1.id, "device.revoked", d2.id), (room2.id, "device.revoked", d2.id)]
    )
    assert all(e.meta["user"] == a for e in revoked.events)
    timeline = await store.timeline(room1.id, 0, 10)
    assert timeline[-1].kind == "device.revoked" and timeline[-1].meta["device"] == d2.id
    assert await store.session(b"s" * 32) is None
    assert await store.session(b"t" * 32) is not None  # the other device's stays
    assert [k.device_id for k in await store.device_keys([a])] == []
    assert await store.to_device_pending(d2.id, 0, 10) == []
    assert await store.device(d2.id) is None
    assert [x.id for x in await store.devices_of(a)] == [d1.id]
    # Revoked: gone for good (no keys, no second revocation, no rename).
    with pytest.raises(NotFound):
        await store.put_device_keys(a, d2.id, b"bundle", 10)
    assert await store.revoke_device(a, d2.id, 11) is None
    assert await store.rename_device(a, d2.id, "x") is None
