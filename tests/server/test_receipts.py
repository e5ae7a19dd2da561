"""Read receipts are group-committed like sends: concurrent ``read`` frames share a
transaction, and each is acked only once its batch committed. A room hears of the
markers that moved once per batch, and at most once per interval
(``server.receipts.ReceiptAnnouncer``): one ``receipts`` event naming them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

import pytest

from clients.python import Client, ServerError, log_in
from harness import PASSWORD, ServerUnderTest, connected, next_of, practitioner, sealed
from protocol.errors import ErrorCode
from protocol.frames import ClientFrame, Event, ReadMarker
from server.gateway import Connection
from storage import GroupCommit
from storage.errors import Unavailable
from storage.types import ReadMark, ReadResult


def gate_first_batch(
    monkeypatch: pytest.MonkeyPatch, receipts: GroupCommit[ReadMark, ReadResult], expected: int
) -> Callable[[], Awaitable[None]]:
    """Hold the first batch until ``expected`` receipts were handed to ``receipts``:
    the others then queue behind it, whatever the timing, and go in one batch."""
    queued = 0
    all_queued = asyncio.Event()
    flush, submit = receipts._flush, receipts.submit

    def counting_submit(mark: ReadMark) -> asyncio.Future[ReadResult]:
        nonlocal queued
        queued += 1
        if queued == expected:
            all_queued.set()
        return submit(mark)

    async def gated_flush(marks: Sequence[ReadMark]) -> list[ReadResult]:
        await all_queued.wait()
        return await flush(marks)

    monkeypatch.setattr(receipts, "submit", counting_submit)
    monkeypatch.setattr(receipts, "_flush", gated_flush)
    return all_queued.wait


async def test_concurrent_reads_share_transactions_and_every_ack_is_stored(
    server: ServerUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    clients = [await connected(await practitioner(server.url, server.store)) for _ in range(8)]
    try:
        owner, *readers = clients
        room = await owner.create_room("group", [c.user_id for c in readers])
        seqs = [await owner.send(room.id, sealed(f"m{i}".encode())) for i in range(4)]
        receipts = server.services.receipts
        batches, items = receipts.batches, receipts.items
        total = len(readers) * len(seqs)
        gate_first_batch(monkeypatch, receipts, total)

        # Every reader receipts every message at once, half of them newest first.
        acks = await asyncio.gather(
            *(
                c.read(room.id, s)
                for i, c in enumerate(readers)
                for s in (seqs if i % 2 else seqs[::-1])
            )
        )
        assert receipts.items - items == total
        # The held batch, then at most one more with all that queued meanwhile.
        assert 1 <= receipts.batches - batches <= 2
        # Acked once committed: each reader's stored marker is the highest it was acked.
        for i, reader in enumerate(readers):
            mine = acks[i * len(seqs) : (i + 1) * len(seqs)]
            membership = await server.store.membership(room.id, reader.user_id)
            assert membership is not None and membership.read_seq == max(mine) == seqs[-1]
            assert all(ack <= seqs[-1] for ack in mine)
    finally:
        for c in clients:
            await c.close()


async def test_a_non_member_reading_is_refused_and_stores_nothing(
    server: ServerUnderTest,
) -> None:
    a = await connected(await practitioner(server.url, server.store))
    outsider = await connected(await practitioner(server.url, server.store))
    try:
        room = await a.create_room("group", [])
        seq = await a.send(room.id, sealed(b"m"))
        items = server.services.receipts.items
        with pytest.raises(ServerError) as refused:
            await outsider.read(room.id, seq)
        assert refused.value.code == ErrorCode.FORBIDDEN
        assert server.services.receipts.items == items  # refused before the batch
        assert await a.read(room.id, seq) == seq
    finally:
        await a.close()
        await outsider.close()


async def test_a_failed_batch_acks_none_of_its_receipts(
    server: ServerUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The commit fails once: the reader gets ``unavailable``, not an ack, and the SDK
    sends the receipt again; the ack it then gets is of a stored marker."""
    a = await connected(await practitioner(server.url, server.store))
    b = await connected(await practitioner(server.url, server.store))
    try:
        room = await a.create_room("group", [b.user_id])
        seq = await a.send(room.id, sealed(b"m"))
        receipts = server.services.receipts
        flush, outcomes = receipts._flush, list[str]()

        async def failing_once(marks: Sequence[ReadMark]) -> list[ReadResult]:
            if not outcomes:
                outcomes.append("failed")
                raise Unavailable("the commit failed")
            outcomes.append("committed")
            return await flush(marks)

        monkeypatch.setattr(receipts, "_flush", failing_once)
        assert await b.read(room.id, seq) == seq
        assert outcomes == ["failed", "committed"]
        membership = await server.store.membership(room.id, b.user_id)
        assert membership is not None and membership.read_seq == seq
    finally:
        await a.close()
        await b.close()


async def receipts_before_typing(observer: Client, room_id: str, by: str) -> list[Event]:
    """The ``receipts`` events ``observer`` gets, in any room, before ``by``'s typing
    notice in ``room_id``: one node pushes in order, so a notice sent once the reads
    were acked comes after every announcement of them."""
    got: list[Event] = []
    async with asyncio.timeout(15):
        while True:
            item = await observer.recv()
            if not isinstance(item, Event):
                continue
            if item.kind == "receipts":
                got.append(item)
            elif (item.kind, item.room, item.user) == ("typing", room_id, by):
                return got


async def test_a_batch_is_announced_once_per_room_with_the_markers_it_raised(
    server: ServerUnderTest,
) -> None:
    clients = [await connected(await practitioner(server.url, server.store)) for _ in range(4)]
    try:
        owner, *readers = clients
        room = await owner.create_room("group", [c.user_id for c in readers])
        other = await owner.create_room("group", [readers[0].user_id])
        seqs = [await owner.send(room.id, sealed(f"m{i}".encode())) for i in range(3)]
        other_seq = await owner.send(other.id, sealed(b"o"))
        marks = [ReadMark(room.id, r.user_id, s) for r in readers for s in seqs]
        marks += [
            ReadMark(room.id, readers[0].user_id, seqs[0]),  # moves nothing
            ReadMark(other.id, readers[0].user_id, other_seq),
        ]
        receipts = server.services.receipts
        batches = receipts.batches
        # Queued together, before the committer runs: one batch.
        results = await asyncio.gather(*(receipts.submit(m) for m in marks))
        assert receipts.batches - batches == 1
        assert [r.raised for r in results] == [True] * 9 + [False, True]

        await readers[0].typing(room.id, True)
        announced = await receipts_before_typing(owner, room.id, readers[0].user_id)
        # Nine reads in the room, one event there, each marker at its highest.
        by_room = {e.room: e for e in announced}
        assert len(announced) == len(by_room) == 2
        assert set(by_room[room.id].reads or ()) == {
            ReadMarker(r.user_id, seqs[-1]) for r in readers
        }
        assert by_room[other.id].reads == (ReadMarker(readers[0].user_id, other_seq),)
        assert all(e.seq == 0 and e.ts > 0 for e in announced)
    finally:
        for c in clients:
            await c.close()


async def test_only_a_read_that_moves_the_marker_is_announced_and_to_every_device(
    server: ServerUnderTest,
) -> None:
    """The reading device hears of its own marker too (its user's other devices do,
    to clear the room's unread count); a read below or at the marker tells nobody."""
    a = await connected(await practitioner(server.url, server.store))
    b = await connected(await practitioner(server.url, server.store))
    b_phone = await connected(
        await log_in(server.url, b.account.email, PASSWORD, device_name="phone")
    )
    try:
        room = await a.create_room("group", [b.user_id])
        first = await a.send(room.id, sealed(b"un"))
        seq = await a.send(room.id, sealed(b"deux"))
        assert await b.read(room.id, seq) == seq
        for client in (a, b, b_phone):
            announced = await next_of(client, Event, kind="receipts", room=room.id)
            assert isinstance(announced, Event)
            assert announced.reads == (ReadMarker(b.user_id, seq),)

        assert await b.read(room.id, seq) == seq  # again
        assert await b_phone.read(room.id, first) == seq  # behind the marker
        await b.typing(room.id, True)
        assert await receipts_before_typing(a, room.id, b.user_id) == []
        assert server.services.announcer.held(room.id) == {}  # nor later
    finally:
        for c in (a, b, b_phone):
            await c.close()


async def test_markers_raised_within_an_interval_wait_for_its_end_in_one_event(
    server: ServerUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The room's first receipt is told at once; the ones after it, until the interval
    ends (``release_all`` stands for that here), in one event at their highest."""
    announcer = server.services.announcer
    monkeypatch.setattr(announcer, "_every", 3600.0)  # the interval ends when we say
    a, b, c = [await connected(await practitioner(server.url, server.store)) for _ in range(3)]
    try:
        room = await a.create_room("group", [b.user_id, c.user_id])
        first = await a.send(room.id, sealed(b"un"))
        second = await a.send(room.id, sealed(b"deux"))
        assert await b.read(room.id, first) == first
        told = await next_of(a, Event, kind="receipts", room=room.id)
        assert isinstance(told, Event) and told.reads == (ReadMarker(b.user_id, first),)

        assert await c.read(room.id, first) == first
        assert await c.read(room.id, second) == second
        assert await b.read(room.id, second) == second
        await c.typing(room.id, True)
        assert await receipts_before_typing(a, room.id, c.user_id) == []
        assert announcer.held(room.id) == {c.user_id: second, b.user_id: second}

        await announcer.release_all()
        told = await next_of(a, Event, kind="receipts", room=room.id)
        assert isinstance(told, Event)
        assert set(told.reads or ()) == {
            ReadMarker(c.user_id, second),
            ReadMarker(b.user_id, second),
        }
        assert announcer.held(room.id) is None  # quiet again: the next one goes at once
    finally:
        for client in (a, b, c):
            await client.close()


async def test_a_read_in_flight_takes_no_task_and_leaves_the_sends_hot_path_open(
    server: ServerUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ``read`` to an attached room goes to the receipts' committer as it arrives,
    like a ``send``: while it waits for its batch, the connection's sends still take
    their task-free road, get seqs in the order they came and are acked first."""
    handled: list[str] = []
    handle = Connection._handle

    async def recording_handle(self: Connection, frame: ClientFrame) -> None:
        handled.append(frame.T)
        await handle(self, frame)

    monkeypatch.setattr(Connection, "_handle", recording_handle)
    a = await connected(await practitioner(server.url, server.store))
    b = await connected(await practitioner(server.url, server.store))
    try:
        room = await a.create_room("group", [b.user_id])
        first = await a.send(room.id, sealed(b"un"))
        handled.clear()
        receipts = server.services.receipts
        flush, release = receipts._flush, asyncio.Event()

        async def held_flush(marks: Sequence[ReadMark]) -> list[ReadResult]:
            await release.wait()
            return await flush(marks)

        monkeypatch.setattr(receipts, "_flush", held_flush)
        read = asyncio.create_task(b.read(room.id, first))
        seqs = await asyncio.gather(*(b.send(room.id, sealed(f"m{i}".encode())) for i in range(3)))
        assert not read.done()  # its batch is held: the sends did not wait behind it
        assert seqs == [first + 1, first + 2, first + 3]  # in the order they came
        release.set()
        assert await read == first
        assert handled == []  # neither the read nor the sends took a task
    finally:
        await a.close()
        await b.close()


async def test_a_read_of_a_room_not_attached_yet_takes_the_request_road(
    server: ServerUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hot path decides membership from memory only: a read naming a room this
    connection is not attached to is handled by a task (the database decides)."""
    handled: list[str] = []
    handle = Connection._handle

    async def recording_handle(self: Connection, frame: ClientFrame) -> None:
        handled.append(frame.T)
        await handle(self, frame)

    monkeypatch.setattr(Connection, "_handle", recording_handle)
    a = await connected(await practitioner(server.url, server.store))
    outsider = await connected(await practitioner(server.url, server.store))
    try:
        room = await a.create_room("group", [])
        seq = await a.send(room.id, sealed(b"m"))
        handled.clear()
        with pytest.raises(ServerError) as refused:
            await outsider.read(room.id, seq)
        assert refused.value.code == ErrorCode.FORBIDDEN
        assert handled == ["read"]
    finally:
        await a.close()
        await outsider.close()
