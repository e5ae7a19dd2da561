"""Two practitioners and more exchange messages over real sockets, in every room kind."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from clients.python import Client, ServerError
from harness import (
    ServerUnderTest,
    boxed,
    connected,
    messages_from_others,
    next_of,
    opened,
    practitioner,
    running_server,
    sealed,
    settings_for,
)
from protocol.crypto.envelope import wrap_header
from protocol.errors import ErrorCode
from protocol.frames import Event, Msg, ReadMarker, ToDeviceMsg
from storage.types import NewMessage


async def next_msg(client: Client, room: str) -> Msg:
    """The next message of ``room`` sent by someone else."""
    return (await messages_from_others(client, room, 1))[0]


@pytest.mark.parametrize("kind", ["direct", "group", "patient_case"])
async def test_two_members_converse_in_each_room_kind(server: ServerUnderTest, kind: str) -> None:
    a = await connected(await practitioner(server.url, server.store))
    b = await connected(await practitioner(server.url, server.store))
    try:
        room = await a.create_room(kind, [b.user_id])
        assert room.kind == kind and room.status == "open"
        assert {m.user for m in room.members or ()} == {a.user_id, b.user_id}

        joined = await next_of(b, Event, kind="member.joined", room=room.id)
        assert isinstance(joined, Event) and set(joined.users or ()) == {a.user_id, b.user_id}

        seq1 = await a.send(room.id, sealed(b"ciphertext from a"))
        got = await next_msg(b, room.id)
        assert (got.seq, opened(got.body), got.sender) == (seq1, b"ciphertext from a", a.user_id)

        seq2 = await b.send(room.id, sealed(b"ciphertext from b"))
        got = await next_msg(a, room.id)
        assert (got.seq, opened(got.body), got.sender) == (seq2, b"ciphertext from b", b.user_id)
        assert seq2 == seq1 + 1
    finally:
        await a.close()
        await b.close()


async def test_direct_room_is_unique_per_pair(server: ServerUnderTest) -> None:
    a = await connected(await practitioner(server.url, server.store))
    b_account = await practitioner(server.url, server.store)
    try:
        first = await a.create_room("direct", [b_account.user_id])
        second = await a.create_room("direct", [b_account.user_id])
        assert first.id == second.id
        b = await connected(b_account)
        try:
            third = await b.create_room("direct", [a.user_id])
            assert third.id == first.id
        finally:
            await b.close()
    finally:
        await a.close()


async def test_non_member_is_refused(server: ServerUnderTest) -> None:
    a = await connected(await practitioner(server.url, server.store))
    b = await practitioner(server.url, server.store)
    outsider = await connected(await practitioner(server.url, server.store))
    try:
        room = await a.create_room("group", [b.user_id])
        await a.send(room.id, sealed(b"secret"))
        for attempt in (
            outsider.send(room.id, sealed(b"intrusion")),
            outsider.sync(room.id, 0),
            outsider.read(room.id, 1),
            outsider.typing(room.id),
            outsider.room(room.id),
        ):
            with pytest.raises(ServerError) as info:
                await attempt
            assert info.value.code == ErrorCode.FORBIDDEN
        batch = await a.sync(room.id, 0)
        assert [i.seq for i in batch.items] == [1, 2]  # nothing was written by the outsider
    finally:
        await a.close()
        await outsider.close()


async def test_unverified_user_is_refused_until_verified_without_reconnecting(
    server: ServerUnderTest,
) -> None:
    a = await connected(await practitioner(server.url, server.store))
    pending = await connected(await practitioner(server.url, server.store, verified=False))
    try:
        assert pending.verified is False
        with pytest.raises(ServerError) as info:
            await pending.create_room("direct", [a.user_id])
        assert info.value.code == ErrorCode.IDENTITY_UNVERIFIED
        room = await a.create_room("direct", [pending.user_id])
        await a.send(room.id, sealed(b"hello"))
        await pending.ping()  # replies come in order: anything live would be queued first
        assert pending.rooms == {} and pending._inbox.empty()  # nothing was delivered
        for attempt in (pending.send(room.id, sealed(b"hi")), pending.sync(room.id, 0)):
            with pytest.raises(ServerError) as info:
                await attempt
            assert info.value.code == ErrorCode.IDENTITY_UNVERIFIED

        await server.store.set_verified(pending.user_id, True)
        seq = await pending.send(room.id, sealed(b"verified now"))
        assert seq == 3
        assert opened((await next_msg(a, room.id)).body) == b"verified now"
        # The connection was welcomed again with its rooms and caught up on its own.
        assert pending.verified and room.id in pending.rooms
        assert opened((await next_msg(pending, room.id)).body) == b"hello"
    finally:
        await a.close()
        await pending.close()


async def test_retried_cid_returns_the_original_seq(server: ServerUnderTest) -> None:
    a = await connected(await practitioner(server.url, server.store))
    b = await connected(await practitioner(server.url, server.store))
    try:
        room = await a.create_room("direct", [b.user_id])
        first = await a.send(room.id, sealed(b"once"), cid="cid-1")
        again = await a.send(room.id, sealed(b"once"), cid="cid-1")
        assert first == again
        batch = await b.sync(room.id, 0)
        assert [i.seq for i in batch.items if isinstance(i, Msg)] == [first]
        other = await a.create_room("group", [b.user_id])
        with pytest.raises(ServerError) as info:
            await a.send(other.id, sealed(b"reuse"), cid="cid-1")
        assert info.value.code == ErrorCode.CONFLICT
    finally:
        await a.close()
        await b.close()


async def test_a_retried_cid_is_fanned_out_again(server: ServerUnderTest) -> None:
    """A message stored whose fan-out never happened (its node died in between, or the
    commit's outcome was unknown to the sender): the sender's retry, same cid, gets the
    original seq and the members get the message live, not at the room's next one."""
    alice = await practitioner(server.url, server.store)
    a, b = await connected(alice), await connected(await practitioner(server.url, server.store))
    try:
        room = await a.create_room("direct", [b.user_id])
        [stored] = await server.store.append_messages(
            [NewMessage(room.id, alice.user_id, alice.device_id, "cid-x", sealed(b"lost?"), 1, ())]
        )
        assert stored.item is not None  # committed, never published
        again = await a.send(room.id, sealed(b"lost?"), cid="cid-x")
        assert again == stored.item.seq
        got = await next_of(b, Msg, room=room.id)
        assert isinstance(got, Msg) and got.seq == again and opened(got.body) == b"lost?"
    finally:
        await a.close()
        await b.close()


async def test_typing_and_read_receipts_reach_the_other_members(server: ServerUnderTest) -> None:
    a = await connected(await practitioner(server.url, server.store))
    b = await connected(await practitioner(server.url, server.store))
    try:
        room = await a.create_room("direct", [b.user_id])
        seq = await a.send(room.id, sealed(b"x"))
        await next_msg(b, room.id)
        await b.typing(room.id, True)
        typing = await next_of(a, Event, kind="typing", room=room.id)
        assert isinstance(typing, Event) and (typing.user, typing.on, typing.seq) == (
            b.user_id,
            True,
            0,
        )
        assert await b.read(room.id, seq + 1000) == seq  # capped at the room's last seq
        receipts = await next_of(a, Event, kind="receipts", room=room.id)
        assert isinstance(receipts, Event) and receipts.reads == (ReadMarker(b.user_id, seq),)
        info = await b.room(room.id)
        assert info.read_seq == seq
    finally:
        await a.close()
        await b.close()


async def test_membership_changes_are_events_and_take_effect(server: ServerUnderTest) -> None:
    owner = await connected(await practitioner(server.url, server.store))
    b = await connected(await practitioner(server.url, server.store))
    c = await connected(await practitioner(server.url, server.store))
    try:
        room = await owner.create_room("group", [b.user_id])
        await owner.invite(room.id, [c.user_id])
        joined = await next_of(c, Event, kind="member.joined", users=(c.user_id,))
        assert isinstance(joined, Event) and joined.users == (c.user_id,)
        await next_of(b, Event, kind="member.joined", users=(c.user_id,))

        # Members below admin rank cannot manage the room.
        with pytest.raises(ServerError) as info:
            await b.remove(room.id, c.user_id)
        assert info.value.code == ErrorCode.FORBIDDEN

        await owner.set_role(room.id, b.user_id, "admin")
        await b.remove(room.id, c.user_id)
        left = await next_of(c, Event, kind="member.left", room=room.id)
        assert isinstance(left, Event) and (left.user, left.reason) == (c.user_id, "removed")
        await owner.send(room.id, sealed(b"after removal"))
        with pytest.raises(ServerError) as info:
            await c.send(room.id, sealed(b"still here?"))
        assert info.value.code == ErrorCode.FORBIDDEN

        # The owner hands over before leaving.
        with pytest.raises(ServerError) as info:
            await owner.leave(room.id)
        assert info.value.code == ErrorCode.CONFLICT
        await owner.set_role(room.id, b.user_id, "owner")
        await owner.leave(room.id)
        described = await b.room(room.id)
        assert [(m.user, m.role) for m in described.members or ()] == [(b.user_id, "owner")]
    finally:
        for client in (owner, b, c):
            await client.close()


async def test_removed_member_receives_nothing_after_removal(server: ServerUnderTest) -> None:
    owner = await connected(await practitioner(server.url, server.store))
    c = await connected(await practitioner(server.url, server.store))
    try:
        room = await owner.create_room("group", [c.user_id])
        await owner.remove(room.id, c.user_id)
        await next_of(c, Event, kind="member.left", room=room.id)
        await owner.send(room.id, sealed(b"not for c"))
        marker = await owner.create_room("direct", [c.user_id])
        await owner.send(marker.id, sealed(b"marker"))
        # Messages are delivered in order per connection: once the marker arrives,
        # anything of the group would have arrived before it.
        while True:
            item = await asyncio.wait_for(c.recv(), 10)
            if isinstance(item, Msg):
                assert item.room == marker.id
                break
    finally:
        await owner.close()
        await c.close()


async def test_closed_patient_case_is_read_only(server: ServerUnderTest) -> None:
    a = await connected(await practitioner(server.url, server.store))
    b = await connected(await practitioner(server.url, server.store))
    try:
        case = await a.create_room("patient_case", [b.user_id])
        await a.update_room(case.id, header=wrap_header(a.device_id, sealed(b"hdr")))
        await b.send(case.id, sealed(b"avis"))
        await a.update_room(case.id, status="closed")
        updated = await next_of(b, Event, kind="room.updated", room=case.id, status="closed")
        assert isinstance(updated, Event) and updated.by == a.user_id
        with pytest.raises(ServerError) as info:
            await b.send(case.id, sealed(b"too late"))
        assert info.value.code == ErrorCode.FORBIDDEN
        batch = await b.sync(case.id, 0)  # still readable
        assert [opened(i.body) for i in batch.items if isinstance(i, Msg)] == [b"avis"]
        await a.update_room(case.id, status="open")
        assert await b.send(case.id, sealed(b"reopened")) > 0
    finally:
        await a.close()
        await b.close()


async def test_to_device_messages_wait_for_the_device_and_its_ack(server: ServerUnderTest) -> None:
    a = await connected(await practitioner(server.url, server.store))
    b_account = await practitioner(server.url, server.store)
    try:
        with pytest.raises(ServerError) as info:  # no shared room yet
            await a.to_device(b_account.user_id, b_account.device_id, boxed(b"key"))
        assert info.value.code == ErrorCode.FORBIDDEN
        await a.create_room("direct", [b_account.user_id])
        tid = await a.to_device(b_account.user_id, b_account.device_id, boxed(b"sender key"))

        # Delivered on connect, again on a later connect until acknowledged.
        b = Client(b_account)
        await b.connect()
        got = await next_of(b, ToDeviceMsg)
        assert isinstance(got, ToDeviceMsg) and (got.tid, got.body, got.user) == (
            tid,
            boxed(b"sender key"),
            a.user_id,
        )
        await b.close()  # waits for its acks to be answered
        assert await server.store.to_device_pending(b_account.device_id, 0, 10) == []

        live = Client(b_account)
        await live.connect()
        tid2 = await a.to_device(b_account.user_id, b_account.device_id, boxed(b"second"))
        got = await next_of(live, ToDeviceMsg)
        assert isinstance(got, ToDeviceMsg) and (got.tid, got.body) == (tid2, boxed(b"second"))
        await live.close()
    finally:
        await a.close()


async def test_a_to_device_backlog_larger_than_the_send_queue_arrives_whole(
    tmp_path: Path,
) -> None:
    settings = replace(settings_for(tmp_path), send_queue_frames=8)
    async with running_server(settings) as server:
        a = await connected(await practitioner(server.url, server.store))
        b_account = await practitioner(server.url, server.store)
        try:
            await a.create_room("direct", [b_account.user_id])
            sent = [
                await a.to_device(b_account.user_id, b_account.device_id, boxed(f"k{i}".encode()))
                for i in range(30)
            ]
            b = await connected(b_account)  # replayed 4 at a time, more after each ack
            got = [await next_of(b, ToDeviceMsg) for _ in range(30)]
            assert sorted(m.tid for m in got if isinstance(m, ToDeviceMsg)) == sent
            assert b.reconnects == 0  # never closed as a slow consumer
            await b.close()
        finally:
            await a.close()
