"""The guest contract (storage/guests.py docstring), identical for every adapter."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from storage import NotFound, Store
from storage.guests import Guest, Promotion, ReminderPolicy, reinvite_action
from storage.outbox import NewNotification
from storage.types import NewUser

_n = itertools.count(1)
HOUR = 3600 * 1000
POLICY = ReminderPolicy(ttl_ms=48 * HOUR, remind_after_ms=HOUR, max_reminders=2)


async def user(store: Store, email: str | None = None) -> str:
    n = next(_n)
    created = await store.create_user(
        NewUser(
            email or f"g{n}@example.org",
            "hash",
            "Jeanne",
            f"Nom{n}",
            "69001",
            "Lyon",
            "Cardiologie",
            "salarie",
        ),
        now=1000,
    )
    return created.id


def notice(guest: Guest, reminder: bool) -> NewNotification:
    return NewNotification(
        "email", guest.email, "guest_invitation", {"room": guest.room_id, "reminder": reminder}
    )


async def group(store: Store, owner: str, kind: str = "group") -> str:
    room, _ = await store.create_room(kind, owner, [], b"Staff", None, 2000)
    return room.id


async def emails_to(store: Store, address: str) -> list[NewNotification]:
    rows = await store.notifications("email", address)
    return [NewNotification(r.channel, r.recipient, r.template, r.data) for r in rows]


async def test_invitation_is_recorded_with_its_email_in_one_transaction(store: Store) -> None:
    owner = await user(store)
    room = await group(store, owner)
    [invited] = await store.invite_guests(
        room, ["guest@example.org"], owner, 10_000, POLICY, notice
    )
    assert invited.action == "new" and invited.notified
    guest = invited.guest
    assert (guest.room_id, guest.email, guest.invited_by, guest.state) == (
        room,
        "guest@example.org",
        owner,
        "pending",
    )
    # The invitation is a timeline event (no address in it) and its seq is recorded.
    assert invited.item is not None and invited.item.kind == "guest.invited"
    assert invited.item.meta == {"by": owner, "invitation": guest.id}
    assert guest.invited_seq == invited.item.seq == 2
    assert [i.kind for i in await store.timeline(room, 0, 10)] == ["member.joined", "guest.invited"]
    assert guest.expires_at == 10_000 + POLICY.ttl_ms
    assert await store.pending_guests(room, 10_001) == [guest]
    assert await emails_to(store, "guest@example.org") == [notice(guest, False)]


async def test_reinviting_does_not_spam(store: Store) -> None:
    owner = await user(store)
    room = await group(store, owner)
    address = "again@example.org"
    t0 = 10_000
    await store.invite_guests(room, [address], owner, t0, POLICY, notice)
    # Soon after: one pending row, expiry pushed back, no second e-mail.
    [quiet] = await store.invite_guests(
        room, [address, address], owner, t0 + 60_000, POLICY, notice
    )
    assert quiet.action == "quiet" and not quiet.notified
    assert quiet.guest.expires_at == t0 + 60_000 + POLICY.ttl_ms
    assert len(await store.pending_guests(room, t0 + 60_001)) == 1
    assert len(await emails_to(store, address)) == 1
    # After remind_after_ms: a reminder, at most max_reminders of them.
    t = t0
    for expected in ("remind", "remind", "quiet"):
        t += POLICY.remind_after_ms
        [again] = await store.invite_guests(room, [address], owner, t, POLICY, notice)
        assert again.action == expected
    assert len(await emails_to(store, address)) == 3
    assert len(await store.guests_by_email(address)) == 1


async def test_an_expired_invitation_is_not_listed_nor_promoted_and_restarts(
    store: Store,
) -> None:
    owner = await user(store)
    room = await group(store, owner)
    address = "late@example.org"
    [first] = await store.invite_guests(room, [address], owner, 10_000, POLICY, notice)
    after = first.guest.expires_at
    assert await store.pending_guests(room, after) == []
    late = await user(store, address)
    assert await store.promote_guest(address, late, after) == []
    assert await store.membership(room, late) is None
    [restarted] = await store.invite_guests(room, [address], owner, after + 1, POLICY, notice)
    assert restarted.action == "restart" and restarted.guest.id == first.guest.id
    assert restarted.item is not None and restarted.guest.invited_seq == restarted.item.seq == 3
    assert restarted.guest.expires_at == after + 1 + POLICY.ttl_ms
    assert len(await emails_to(store, address)) == 2


async def test_promotion_turns_every_pending_invitation_into_a_membership(store: Store) -> None:
    owner = await user(store)
    room_a, room_b, room_c = [await group(store, owner) for _ in range(3)]
    address = "new.member@example.org"
    for room in (room_a, room_b, room_c):
        await store.invite_guests(room, [address], owner, 10_000, POLICY, notice)
    assert await store.revoke_guest(room_c, address, 10_500) is not None
    newcomer = await user(store, address)
    webhooks: list[list[Promotion]] = []

    def notices(promotions: object) -> list[NewNotification]:
        assert isinstance(promotions, list)
        webhooks.append(promotions)
        return [NewNotification("webhook", "http://hook.test/x", "guest.promoted", {"n": 1})]

    promotions = await store.promote_guest(address, newcomer, 11_000, notices)
    assert [p.room_id for p in promotions] == sorted([room_a, room_b])
    for p in promotions:
        assert (p.user_id, p.invited_by, p.email) == (newcomer, owner, address)
        # ``upto``: the seq of the invitation's guest.invited event.
        assert p.item.kind == "member.promoted" and p.invited_seq == 2
        assert p.item.meta == {"by": owner, "user": newcomer, "upto": 2}
        # Gapless per-room seq: opening event, invitation, promotion.
        assert p.item.seq == 3
        [opened, invited, promoted] = await store.timeline(p.room_id, 0, 10)
        assert opened.kind == "member.joined" and invited.kind == "guest.invited"
        assert promoted == p.item
        membership = await store.membership(p.room_id, newcomer)
        assert membership is not None and membership.role == "member"
        assert membership.joined_seq == p.item.seq
    assert await store.membership(room_c, newcomer) is None  # revoked: never promoted
    assert [n.template for n in await store.notifications("webhook")] == ["guest.promoted"]
    assert webhooks and webhooks[-1] == promotions
    states = {g.room_id: g.state for g in await store.guests_by_email(address)}
    assert states == {room_a: "promoted", room_b: "promoted", room_c: "revoked"}
    # Idempotent: nothing left to promote, no event, no webhook.
    assert await store.promote_guest(address, newcomer, 12_000, notices) == []
    assert len(await store.notifications("webhook")) == 1
    assert [i.seq for i in await store.timeline(room_a, 0, 10)] == [1, 2, 3]


async def test_concurrent_promotions_promote_once(store: Store) -> None:
    owner = await user(store)
    room = await group(store, owner)
    address = "race@example.org"
    await store.invite_guests(room, [address], owner, 10_000, POLICY, notice)
    newcomer = await user(store, address)
    results = await asyncio.gather(
        *(store.promote_guest(address, newcomer, 11_000) for _ in range(5))
    )
    assert sorted(len(r) for r in results) == [0, 0, 0, 0, 1]
    assert [i.kind for i in await store.timeline(room, 0, 10)] == [
        "member.joined",
        "guest.invited",
        "member.promoted",
    ]


async def test_an_existing_member_is_promoted_without_an_event(store: Store) -> None:
    owner = await user(store)
    room = await group(store, owner)
    address = "already@example.org"
    await store.invite_guests(room, [address], owner, 10_000, POLICY, notice)
    member = await user(store, address)
    await store.add_members(room, [member], owner, 10_100)
    assert await store.promote_guest(address, member, 11_000) == []
    assert [g.state for g in await store.guests_by_email(address)] == ["promoted"]
    assert await store.room(room) is not None
    last = await store.room(room)
    assert last is not None and last.last_seq == 3  # opened, invited, joined: no promotion


async def test_a_closed_case_keeps_its_invitation_pending(store: Store) -> None:
    owner = await user(store)
    case = await group(store, owner, "patient_case")
    address = "case@example.org"
    await store.invite_guests(case, [address], owner, 10_000, POLICY, notice)
    await store.update_room(case, owner, 10_100, status="closed")
    newcomer = await user(store, address)
    assert await store.promote_guest(address, newcomer, 11_000) == []
    assert [g.state for g in await store.guests_by_email(address)] == ["pending"]
    await store.update_room(case, owner, 11_100, status="open")
    [promotion] = await store.promote_guest(address, newcomer, 11_200)
    assert promotion.room_id == case


async def test_revocation(store: Store) -> None:
    owner = await user(store)
    room = await group(store, owner)
    address = "revoked@example.org"
    await store.invite_guests(room, [address], owner, 10_000, POLICY, notice)
    revoked = await store.revoke_guest(room, address, 10_500)
    assert revoked is not None and revoked.state == "revoked" and revoked.resolved_at == 10_500
    assert await store.revoke_guest(room, address, 10_600) is None
    assert await store.pending_guests(room, 10_700) == []
    # A later invitation is a new one.
    [again] = await store.invite_guests(room, [address], owner, 10_800, POLICY, notice)
    assert again.action == "new" and again.guest.id != revoked.id


async def test_inviting_into_a_missing_room_fails(store: Store) -> None:
    owner = await user(store)
    with pytest.raises(NotFound):
        await store.invite_guests("nope", ["x@example.org"], owner, 1, POLICY, notice)
    assert await store.notifications("email") == []


def test_reinvite_action_table() -> None:
    g = Guest(1, "r", "a@b.fr", "u", 0, 1, 100, "pending", 0, 0, None, None)
    policy = ReminderPolicy(ttl_ms=100, remind_after_ms=10, max_reminders=1)
    assert reinvite_action(None, 5, policy) == "new"
    assert reinvite_action(g, 5, policy) == "quiet"
    assert reinvite_action(g, 10, policy) == "remind"
    assert reinvite_action(g, 100, policy) == "restart"
    exhausted = Guest(1, "r", "a@b.fr", "u", 0, 1, 100, "pending", 1, 0, None, None)
    assert reinvite_action(exhausted, 50, policy) == "quiet"
