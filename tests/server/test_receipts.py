"""Read receipts are group-committed like sends: concurrent ``read`` frames share a
transaction, and each is acked only once its batch committed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

import pytest

from clients.python import ServerError
from harness import ServerUnderTest, connected, practitioner, sealed
from protocol.errors import ErrorCode
from storage import GroupCommit
from storage.errors import Unavailable
from storage.types import ReadMark


def gate_first_batch(
    monkeypatch: pytest.MonkeyPatch, receipts: GroupCommit[ReadMark, int], expected: int
) -> Callable[[], Awaitable[None]]:
    """Hold the first batch until ``expected`` receipts were handed to ``receipts``:
    the others then queue behind it, whatever the timing, and go in one batch."""
    queued = 0
    all_queued = asyncio.Event()
    flush, append = receipts._flush, receipts.append

    async def counting_append(mark: ReadMark) -> int:
        nonlocal queued
        queued += 1
        if queued == expected:
            all_queued.set()
        return await append(mark)

    async def gated_flush(marks: Sequence[ReadMark]) -> list[int]:
        await all_queued.wait()
        return await flush(marks)

    monkeypatch.setattr(receipts, "append", counting_append)
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

        async def failing_once(marks: Sequence[ReadMark]) -> list[int]:
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
