"""The store contract (storage/base.py docstring), identical for every adapter."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest

from storage import Conflict, NotFound, Store
from storage.types import NewMessage, NewUser, ReadMark, ReadResult, Session

_n = itertools.count(1)


async def user(store: Store, email: str | None = None) -> str:
    n = next(_n)
    created = await store.create_user(
        NewUser(
            email or f"u{n}@example.org",
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


def msg(room: str, sender: str, device: str, cid: str, body: bytes = b"x") -> NewMessage:
    return NewMessage(room, sender, device, cid, body, ts=5000)


async def test_users_are_unique_by_email(store: Store) -> None:
    uid = await user(store, "dr.house@example.org")
    with pytest.raises(Conflict):
        await user(store, "dr.house@example.org")
    found = await store.user_by_email("dr.house@example.org")
    assert found is not None and found.id == uid and not found.verified
    await store.set_verified(uid, True)
    again = await store.user_by_id(uid)
    assert again is not None and again.verified
    assert await store.existing_user_ids([uid, "nobody", uid]) == {uid}


async def test_devices_and_sessions(store: Store) -> None:
    uid = await user(store)
    device = await store.create_device(uid, "iPhone", 10)
    assert await store.device(device.id) == device
    assert [d.id for d in await store.devices_of(uid)] == [device.id]
    session = Session(b"h" * 32, uid, device.id, 10, 99)
    await store.create_session(session)
    assert await store.session(b"h" * 32) == session
    assert await store.session_user(b"h" * 32) == (session, await store.user_by_id(uid))
    room, _ = await store.create_room("group", uid, [], b"G", None, 11)
    assert await store.session_user_rooms(b"h" * 32) == (
        session,
        await store.user_by_id(uid),
        [room.id],
    )
    second, _ = await store.create_room("group", uid, [], b"H", None, 12)
    found = await store.session_user_rooms(b"h" * 32)
    assert found is not None and found[2] == sorted([room.id, second.id])
    # A user of no room: the session and the user still, no room ids.
    other = await user(store)
    other_device = await store.create_device(other, "Pixel", 10)
    lonely = Session(b"w" * 32, other, other_device.id, 10, 99)
    await store.create_session(lonely)
    assert await store.session_user_rooms(b"w" * 32) == (
        lonely,
        await store.user_by_id(other),
        [],
    )
    assert await store.session_user(b"w" * 32) == (lonely, await store.user_by_id(other))
    await store.delete_session(b"h" * 32)
    assert await store.session(b"h" * 32) is None
    assert await store.session_user(b"h" * 32) is None
    assert await store.session_user_rooms(b"h" * 32) is None


async def test_direct_rooms_exist_once_per_pair(store: Store) -> None:
    a, b = await user(store), await user(store)
    room, item = await store.create_room("direct", a, [b], None, None, 1)
    assert item is not None and item.seq == 1 and set(item.meta["users"]) == {a, b}
    again, none = await store.create_room("direct", b, [a], None, None, 2)
    assert again.id == room.id and none is None
    members = await store.room_members(room.id)
    assert members is not None and members.roles == {a: "member", b: "member"}


async def test_group_roles_and_membership_events(store: Store) -> None:
    owner, b, c = await user(store), await user(store), await user(store)
    room, _ = await store.create_room("group", owner, [b], b"Staff", None, 1)
    joined = await store.add_members(room.id, [b, c], owner, 2)
    assert joined is not None and joined.seq == 2 and joined.meta["users"] == [c]
    assert await store.add_members(room.id, [b, c], owner, 3) is None
    role = await store.set_role(room.id, b, "owner", owner, 4)
    assert role is not None and role.meta == {"by": owner, "user": b, "role": "owner"}
    members = await store.room_members(room.id)
    assert members is not None and members.roles == {owner: "admin", b: "owner", c: "member"}
    assert members.seq == 3
    assert await store.set_role(room.id, "nobody", "owner", b, 5) is None
    members = await store.room_members(room.id)
    assert members is not None and members.roles[b] == "owner"  # nothing half-done
    left = await store.remove_member(room.id, c, owner, "removed", 6)
    assert left is not None and left.kind == "member.left" and left.meta["user"] == c
    assert await store.remove_member(room.id, c, owner, "removed", 7) is None
    assert await store.membership(room.id, c) is None
    assert await store.share_room(owner, b) and not await store.share_room(owner, c)
    assert [r.id for r, _ in await store.rooms_of(b)] == [room.id]
    # What a welcome reads: the rooms as rooms_of has them, and the device queue's start.
    await store.push_to_device("dev-b", owner, "dev-o", b"k1", 8)
    await store.push_to_device("dev-b", owner, "dev-o", b"k2", 9)
    rooms, queued = await store.rooms_and_to_device(b, "dev-b", 1)
    assert rooms == await store.rooms_of(b)
    assert queued == (await store.to_device_pending("dev-b", 0, 10))[:1]


async def test_seq_is_gapless_and_cids_idempotent_under_concurrency(store: Store) -> None:
    a, b = await user(store), await user(store)
    room, _ = await store.create_room("group", a, [b], b"G", None, 1)
    batches = [
        [msg(room.id, sender, f"dev-{sender}", f"{sender}-{i}-{j}") for j in range(20)]
        for i, sender in enumerate([a, b] * 5)
    ]
    results = await asyncio.gather(*(store.append_messages(batch) for batch in batches))
    seqs = sorted(r.item.seq for rs in results for r in rs if r.item is not None)
    assert seqs == list(range(2, 2 + 200))
    retried = await store.append_messages(batches[0][:3])
    assert all(r.duplicate for r in retried)
    assert [r.item.seq for r in retried if r.item] == [r.item.seq for r in results[0][:3] if r.item]
    room2, _ = await store.create_room("group", a, [], b"H", None, 1)
    reused = await store.append_messages([msg(room2.id, a, f"dev-{a}", f"{a}-0-0")])
    assert reused[0].refused == "cid_reused"
    timeline = await store.timeline(room.id, 0, 1000)
    assert [i.seq for i in timeline] == list(range(1, 202))


async def test_a_retry_inside_a_batch_of_new_messages_gets_its_original(store: Store) -> None:
    a, b = await user(store), await user(store)
    room, _ = await store.create_room("group", a, [b], b"G", None, 1)
    first = await store.append_messages([msg(room.id, a, "da", "c1"), msg(room.id, b, "db", "c2")])
    again = await store.append_messages(
        [msg(room.id, b, "db", "c3"), msg(room.id, a, "da", "c1"), msg(room.id, a, "da", "c4")]
    )
    assert [(r.duplicate, r.refused) for r in again] == [(False, None), (True, None), (False, None)]
    assert again[1].item == first[0].item
    # The retry took no seq: the new ones follow the first batch with no gap.
    assert [r.item.seq for r in again if r.item] == [4, 2, 5]
    timeline = await store.timeline(room.id, 0, 100)
    assert [(i.seq, i.cid) for i in timeline] == [
        (1, None),
        (2, "c1"),
        (3, "c2"),
        (4, "c3"),
        (5, "c4"),
    ]
    assert (await store.room(room.id)).last_seq == 5  # type: ignore[union-attr]


async def test_a_retry_after_its_sender_left_or_the_room_closed_gets_its_original(
    store: Store,
) -> None:
    a, b = await user(store), await user(store)
    room, _ = await store.create_room("group", a, [b], b"G", None, 1)
    sent = await store.append_messages([msg(room.id, b, "db", "c1"), msg(room.id, a, "da", "c2")])
    assert await store.remove_member(room.id, b, a, "removed", 2) is not None
    retried = await store.append_messages(
        [msg(room.id, b, "db", "c1"), msg(room.id, b, "db", "c3")]
    )
    assert retried[0].duplicate and retried[0].item == sent[0].item
    assert retried[1].refused == "not_member"
    case, _ = await store.create_room("patient_case", a, [], b"Cas", b"hdr", 3)
    kept = await store.append_messages([msg(case.id, a, "da", "c4")])
    await store.update_room(case.id, a, 4, status="closed")
    again = await store.append_messages([msg(case.id, a, "da", "c4")])
    assert again[0].duplicate and again[0].item == kept[0].item


async def test_appends_check_membership_and_status_in_the_transaction(store: Store) -> None:
    a, b, outsider = await user(store), await user(store), await user(store)
    case, _ = await store.create_room("patient_case", a, [b], b"Cas", b"hdr", 1)
    out = await store.append_messages(
        [
            msg(case.id, outsider, "d3", "c1"),
            msg(case.id, a, "d1", "c2"),
            msg("no-room", a, "d1", "c3"),
        ]
    )
    assert [r.refused for r in out] == ["not_member", None, "not_member"]
    await store.update_room(case.id, a, 2, status="closed")
    closed = await store.append_messages([msg(case.id, b, "d2", "c4")])
    assert closed[0].refused == "closed" and closed[0].item is None
    room = await store.room(case.id)
    assert (
        room is not None
        and room.status == "closed"
        and room.header == b"hdr"
        and room.name == b"Cas"
    )
    assert [i.kind for i in await store.timeline(case.id, 0, 10)] == [
        "member.joined",
        "msg",
        "room.updated",
    ]


async def test_timeline_pages(store: Store) -> None:
    a = await user(store)
    room, _ = await store.create_room("group", a, [], b"Solo", None, 1)
    await store.append_messages([msg(room.id, a, "d", f"c{i}", bytes([i])) for i in range(10)])
    page = await store.timeline(room.id, 3, 4)
    assert [i.seq for i in page] == [4, 5, 6, 7]
    assert page[0].body == bytes([2]) and page[0].cid == "c2" and page[0].sender == a
    assert await store.timeline(room.id, 11, 4) == []


async def test_read_markers_only_go_up_to_the_last_seq(store: Store) -> None:
    a = await user(store)
    room, _ = await store.create_room("group", a, [], b"Solo", None, 1)
    await store.append_messages([msg(room.id, a, "d", f"c{i}") for i in range(3)])
    assert await store.set_reads([ReadMark(room.id, a, 3)]) == [ReadResult(3, True)]
    assert await store.set_reads([ReadMark(room.id, a, 2)]) == [ReadResult(3, False)]
    assert await store.set_reads([ReadMark(room.id, a, 99)]) == [ReadResult(4, True)]
    assert await store.set_reads([ReadMark(room.id, "nobody", 2)]) == [ReadResult(0, False)]
    assert await store.set_reads([]) == []
    membership = await store.membership(room.id, a)
    assert membership is not None and membership.read_seq == 4


async def test_a_batch_of_read_marks_is_applied_as_if_one_by_one(store: Store) -> None:
    a, b = await user(store), await user(store)
    room, _ = await store.create_room("group", a, [b], b"Duo", None, 1)
    other, _ = await store.create_room("group", a, [], b"Solo", None, 1)
    await store.append_messages([msg(room.id, a, "d", f"c{i}") for i in range(4)])
    last = (await store.timeline(room.id, 0, 100))[-1].seq
    assert await store.set_reads([ReadMark(room.id, b, 1)]) == [ReadResult(1, True)]
    marks = [
        ReadMark(room.id, a, 2),
        ReadMark(room.id, b, 3),
        ReadMark(room.id, a, 1),  # backwards within the batch: the marker stays
        ReadMark(room.id, a, 3),
        ReadMark(other.id, a, 1),
        ReadMark(room.id, "nobody", 2),  # not a member: refused, changes nothing
        ReadMark(room.id, b, last + 50),  # capped at the room's last seq
        ReadMark(room.id, a, 2),
        ReadMark(room.id, b, 2),
    ]
    results = await store.set_reads(marks)
    assert [r.upto for r in results] == [2, 3, 2, 3, 1, 0, last, 3, last]
    # Raised: each mark that moved its marker past where the batch had it so far.
    assert [r.raised for r in results] == [True, True, False, True, True, False, True, False, False]
    markers = {
        (r, u): (await store.membership(r, u))
        for r, u in [(room.id, a), (room.id, b), (other.id, a)]
    }
    assert {k: m.read_seq if m else None for k, m in markers.items()} == {
        (room.id, a): 3,
        (room.id, b): last,
        (other.id, a): 1,
    }
    assert await store.membership(room.id, "nobody") is None
    # A later batch going backwards, duplicates included, moves nothing.
    assert await store.set_reads([ReadMark(room.id, a, 1), ReadMark(room.id, a, 1)]) == [
        ReadResult(3, False),
        ReadResult(3, False),
    ]


async def test_concurrent_batches_of_read_marks_lose_no_raise(store: Store) -> None:
    """Batches over the same markers in opposite orders, at once (several nodes on
    PostgreSQL): none fails, and each marker ends at the highest seq any batch gave."""
    owner = await user(store)
    readers = [await user(store) for _ in range(5)]
    room, _ = await store.create_room("group", owner, readers, b"Groupe", None, 1)
    await store.append_messages([msg(room.id, owner, "d", f"c{i}") for i in range(20)])
    batches = [
        [ReadMark(room.id, u, seq) for u in (readers if k % 2 else readers[::-1])]
        for k, seq in enumerate(range(1, 21))
    ]
    results = await asyncio.gather(*(store.set_reads(b) for b in batches))
    assert all(len(r) == len(readers) for r in results)
    for u in readers:
        membership = await store.membership(room.id, u)
        assert membership is not None and membership.read_seq == 20


async def test_to_device_queue(store: Store) -> None:
    t1 = await store.push_to_device("dev-b", "ua", "dev-a", b"k1", 1)
    t2 = await store.push_to_device("dev-b", "ua", "dev-a", b"k2", 2)
    t3 = await store.push_to_device("dev-c", "ua", "dev-a", b"k3", 3)
    assert t1 < t2 < t3
    pending = await store.to_device_pending("dev-b", 0, 10)
    assert [(i.tid, i.body) for i in pending] == [(t1, b"k1"), (t2, b"k2")]
    assert [i.tid for i in await store.to_device_pending("dev-b", t1, 10)] == [t2]
    assert await store.ack_to_device("dev-b", [t2, t3]) == 1  # t3 is another device's
    assert [i.tid for i in await store.to_device_pending("dev-b", 0, 10)] == [t1]
    assert [i.tid for i in await store.to_device_pending("dev-c", 0, 10)] == [t3]


async def test_device_keys_directory(store: Store) -> None:
    a, b, c = await user(store), await user(store), await user(store)
    a1 = await store.create_device(a, "laptop", 1)
    a2 = await store.create_device(a, "phone", 2)
    b1 = await store.create_device(b, "tablet", 3)
    assert await store.device_keys([a, b, c]) == []
    await store.put_device_keys(a, a1.id, b"bundle-a1", 10)
    await store.put_device_keys(a, a2.id, b"bundle-a2", 11)
    await store.put_device_keys(b, b1.id, b"bundle-b1", 12)
    await store.put_device_keys(a, a1.id, b"bundle-a1-v2", 13)  # replaced, not added
    found = await store.device_keys([b, a, "nobody", a])
    expected = sorted(
        [
            (a, a1.id, b"bundle-a1-v2", 13),
            (a, a2.id, b"bundle-a2", 11),
            (b, b1.id, b"bundle-b1", 12),
        ]
    )
    assert [(k.user_id, k.device_id, k.bundle, k.updated_at) for k in found] == expected
    assert [k.device_id for k in await store.device_keys([b])] == [b1.id]
    # Another user's device, or no device at all: refused, nothing stored.
    with pytest.raises(NotFound):
        await store.put_device_keys(c, a1.id, b"stolen", 14)
    with pytest.raises(NotFound):
        await store.put_device_keys(c, "no-such-device", b"x", 15)
    assert await store.device_keys([c]) == []


async def test_decryption_failures_are_counted(store: Store) -> None:
    a = await user(store)
    room, _ = await store.create_room("group", a, [], b"G", None, 1)
    assert await store.decryption_failures(room.id) == {}
    assert await store.count_decryption_failure(room.id, "dev-1", "unknown_session", 2) == 1
    assert await store.count_decryption_failure(room.id, "dev-1", "unknown_session", 3) == 2
    assert await store.count_decryption_failure(room.id, "dev-1", "bad_signature", 4) == 1
    assert await store.count_decryption_failure(room.id, "dev-2", "unknown_session", 5) == 1
    assert await store.decryption_failures(room.id) == {
        ("dev-1", "unknown_session"): 2,
        ("dev-1", "bad_signature"): 1,
        ("dev-2", "unknown_session"): 1,
    }


async def test_decryption_health_is_a_rate_over_a_window(store: Store) -> None:
    a = await user(store)
    room, _ = await store.create_room("group", a, [], b"G", None, 1)
    await store.append_messages(
        [NewMessage(room.id, a, "d", f"c{i}", b"x", ts=100 + i) for i in range(10)]
    )
    await store.count_decryption_failure(room.id, "dev-1", "unknown_session", 50)  # old
    await store.count_decryption_failure(room.id, "dev-1", "unknown_session", 105)
    await store.count_decryption_failure(room.id, "dev-2", "bad_signature", 106)
    await store.count_decryption_failure(room.id, "dev-2", "bad_signature", 107)
    health = await store.decryption_health(since=105)
    assert (health.failures, health.messages) == (4, 5)  # a row counts once it moved
    assert health.by_reason == {"unknown_session": 2, "bad_signature": 2}
    assert sorted(health.worst) == [(room.id, "dev-1", 2), (room.id, "dev-2", 2)]
    assert health.rate == 4 / 5
    empty = await store.decryption_health(since=10_000)
    assert (empty.failures, empty.messages, empty.rate) == (0, 0, 0.0)


async def test_committed_data_survives_reopening(store: Store, reopen: Any) -> None:
    a = await user(store)
    room, _ = await store.create_room("group", a, [], b"Persist", None, 1)
    await store.append_messages([msg(room.id, a, "d", "c1", b"durable")])
    await store.close()
    again: Store = await reopen()
    try:
        items = await again.timeline(room.id, 0, 10)
        assert [i.body for i in items if i.kind == "msg"] == [b"durable"]
    finally:
        await again.close()
    # the fixture closes ``store`` again: closing twice must be harmless


async def test_a_migration_missing_below_the_latest_is_still_applied(
    store: Store, reopen: Any
) -> None:
    """Two branches can each add a migration, and the lower-numbered one may reach a
    database after the higher one was applied: it must still run. Simulated by undoing
    0002 (attachments) on a database that has 0003."""
    await store.close()
    undo = ["DROP TABLE attachments", "DELETE FROM schema_version WHERE version = 2"]
    again: Any = await reopen()
    try:
        for statement in undo:
            await again.db.run("undo", lambda c, q=statement: c.execute(q), "write")
    finally:
        await again.close()
    migrated: Store = await reopen()
    try:
        assert await migrated.attachment("no-such-id") is None  # the table is back
    finally:
        await migrated.close()


async def test_room_names_are_stored_as_the_bytes_clients_encrypted(store: Store) -> None:
    """Names are ciphertext (SPEC.md §11.4): bytes in, the same bytes out, on the room
    and in the room.updated event; a rename leaves the header alone."""
    a = await user(store)
    room, _ = await store.create_room("group", a, [], None, None, 1)
    assert room.name is None
    sealed = bytes(range(256)) * 2
    item = await store.update_room(room.id, a, 2, name=sealed)
    assert item.meta["name"] == sealed
    again = await store.room(room.id)
    assert again is not None and again.name == sealed and again.header is None
