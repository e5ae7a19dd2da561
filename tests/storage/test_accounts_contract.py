"""Account lifecycle contract (sessions listed and revoked, password change and reset
by code), identical for every adapter."""

from __future__ import annotations

import asyncio

from test_store_contract import user

from storage import Store
from storage.outbox import NewNotification
from storage.types import Session


async def session(store: Store, user_id: str, n: int, device_name: str = "Poste") -> bytes:
    device = await store.create_device(user_id, device_name, 1000 + n)
    token_hash = bytes([n]) * 32
    await store.create_session(Session(token_hash, user_id, device.id, 1000 + n, 10_000))
    return token_hash


async def test_sessions_are_listed_and_revoked(store: Store) -> None:
    alice, bob = await user(store), await user(store)
    a1 = await session(store, alice, 1, "Cabinet")
    a2 = await session(store, alice, 2, "Téléphone")
    a3 = await session(store, alice, 3)
    b1 = await session(store, bob, 4)
    rows = await store.sessions_of(alice, 5000)
    assert [(r.session.token_hash, r.device_name) for r in rows] == [
        (a1, "Cabinet"),
        (a2, "Téléphone"),
        (a3, "Poste"),
    ]
    assert await store.sessions_of(alice, 10_000) == []  # expired ones are not listed
    # One of one's own; never another account's.
    assert await store.delete_sessions_of(alice, only=[a2, b1]) == [a2]
    assert await store.session(b1) is not None and await store.session(a2) is None
    # All but the current one.
    assert await store.delete_sessions_of(alice, keep=a3) == [a1]
    assert [r.session.token_hash for r in await store.sessions_of(alice, 5000)] == [a3]


async def test_a_password_change_keeps_only_the_current_session(store: Store) -> None:
    alice = await user(store)
    a1, a2 = await session(store, alice, 1), await session(store, alice, 2)
    assert await store.change_password(alice, "new hash", keep=a2) == [a1]
    found = await store.user_by_id(alice)
    assert found is not None and found.password_hash == "new hash"
    assert await store.session(a2) is not None


async def test_password_reset_codes(store: Store) -> None:
    alice, bob = await user(store), await user(store)
    a1 = await session(store, alice, 1)
    b1 = await session(store, bob, 2)
    mail = NewNotification("email", "a@example.org", "password_reset", {"code": "123456"})
    assert await store.reset_password(alice, lambda h: True, "x", 1000, 5) == ("none", [])
    await store.start_password_reset(alice, b"good", 2000, [mail], 1000)
    [queued] = await store.notifications("email", "a@example.org")
    assert queued.template == "password_reset"
    # Wrong codes count; a new code starts the count again.
    for _ in range(5):
        assert await store.reset_password(alice, lambda h: h == b"bad", "x", 1500, 5) == (
            "wrong",
            [],
        )
    assert await store.reset_password(alice, lambda h: h == b"good", "x", 1500, 5) == (
        "exhausted",
        [],
    )
    await store.start_password_reset(alice, b"good", 2000, [], 1600)
    assert await store.reset_password(alice, lambda h: h == b"good", "x", 2000, 5) == (
        "expired",
        [],
    )
    await store.start_password_reset(alice, b"good", 5000, [], 2000)
    outcome = await store.reset_password(alice, lambda h: h == b"good", "new hash", 2500, 5)
    assert outcome == ("reset", [a1])
    found = await store.user_by_id(alice)
    assert found is not None and found.password_hash == "new hash"
    assert await store.session(a1) is None and await store.session(b1) is not None
    # Spent: the same code works once.
    assert await store.reset_password(alice, lambda h: True, "y", 2600, 5) == ("none", [])


async def test_concurrent_guesses_never_exceed_the_attempts(store: Store) -> None:
    alice = await user(store)
    await store.start_password_reset(alice, b"good", 10_000, [], 1000)
    outcomes = await asyncio.gather(
        *(store.reset_password(alice, lambda h: False, "x", 1500, 5) for _ in range(12))
    )
    assert sorted(o for o, _ in outcomes).count("wrong") == 5


async def test_a_deleted_account_keeps_its_id_only(store: Store) -> None:
    alice, bob = await user(store, "alice.del@example.org"), await user(store)
    a1 = await session(store, alice, 1)
    b1 = await session(store, bob, 2)
    device = (await store.sessions_of(alice, 5000))[0].session.device_id
    await store.put_device_keys(alice, device, b"bundle", 1000)
    await store.grant_role(alice, "admin", 1000)
    await store.start_password_reset(alice, b"code", 9000, [], 1000)
    room, _ = await store.create_room("group", alice, [bob], "Staff", None, 1000)
    assert await store.delete_account(alice) == [a1]
    gone = await store.user_by_id(alice)
    assert gone is not None
    assert (gone.email, gone.first_name, gone.last_name) == (
        f"deleted+{alice}@invalid",
        "Compte",
        "supprimé",
    )
    assert gone.password_hash == "!" and not gone.verified and gone.rpps is None
    assert gone.postcode == "" and gone.city == ""
    assert await store.user_by_email("alice.del@example.org") is None
    assert await store.session(a1) is None and await store.session(b1) is not None
    assert await store.roles_of(alice) == frozenset()
    assert await store.device_keys([alice]) == []
    assert await store.reset_password(alice, lambda h: True, "x", 2000, 5) == ("none", [])
    # The room and its membership stay: the colleagues' record of the conversation.
    members = await store.room_members(room.id)
    assert members is not None and alice in members.roles
    # The address can serve a new account.
    assert await user(store, "alice.del@example.org") != alice
