"""GroupCommit: batches, and the commit delay (how many items each batch holds, never
how long anything took: the loop's clock is a fake the tests move by hand)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from storage import GroupCommit


class Recorder:
    """A flush that records its batches; ``gate`` holds each batch until it is set."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def flush(self, items: Sequence[int]) -> list[int]:
        self.batches.append(list(items))
        await self.gate.wait()
        return [i * 10 for i in items]


class Clock:
    """The running loop's ``time``, moved by the test only (its timers then never fire
    unless the test moves it past them)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = 1000.0
        monkeypatch.setattr(asyncio.get_running_loop(), "time", lambda: self.now)


async def settle() -> None:
    """Let every ready task run until nothing changes (a few loop turns)."""
    for _ in range(20):
        await asyncio.sleep(0)


async def test_items_queued_during_a_commit_go_in_the_next_batch() -> None:
    rec = Recorder()
    committer: GroupCommit[int, int] = GroupCommit(rec.flush)
    rec.gate.clear()
    first = committer.submit(1)
    await settle()
    rest = [committer.submit(i) for i in (2, 3, 4)]
    rec.gate.set()
    assert await asyncio.gather(first, *rest) == [10, 20, 30, 40]
    assert rec.batches == [[1], [2, 3, 4]]
    assert (committer.batches, committer.items, committer.delayed) == (2, 4, 0)


async def test_an_item_after_a_pause_commits_alone_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock(monkeypatch)
    rec = Recorder()
    committer: GroupCommit[int, int] = GroupCommit(rec.flush, delay_s=60.0, fill=8)
    assert await committer.append(1) == 10  # the first ever: nothing to wait for
    clock.now += 61  # a pause longer than the delay
    assert await committer.append(2) == 20
    assert rec.batches == [[1], [2]]
    assert committer.delayed == 0


async def test_while_writes_keep_coming_a_batch_waits_to_fill(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock(monkeypatch)
    rec = Recorder()
    committer: GroupCommit[int, int] = GroupCommit(rec.flush, delay_s=0.002, fill=4)
    assert await committer.append(1) == 10
    clock.now += 0.001  # the next write comes within the delay of the last commit
    futures = [committer.submit(2)]
    await settle()
    assert rec.batches == [[1]]  # item 2 waits for company
    futures += [committer.submit(3), committer.submit(4)]
    await settle()
    assert rec.batches == [[1]]  # three of four
    futures.append(committer.submit(5))  # the fourth fills the batch
    assert await asyncio.gather(*futures) == [20, 30, 40, 50]
    assert rec.batches == [[1], [2, 3, 4, 5]]
    assert committer.delayed == 1


async def test_a_waiting_batch_goes_when_its_oldest_item_is_delay_old(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock(monkeypatch)
    rec = Recorder()
    committer: GroupCommit[int, int] = GroupCommit(rec.flush, delay_s=0.002, fill=100)
    await committer.append(1)
    clock.now += 0.001
    futures = [committer.submit(2), committer.submit(3)]
    await settle()
    assert rec.batches == [[1]]
    clock.now += 0.002  # past the timer set for item 2's deadline
    assert await asyncio.gather(*futures) == [20, 30]
    assert rec.batches == [[1], [2, 3]]
    assert committer.delayed == 1


async def test_items_that_waited_behind_a_slow_commit_go_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock(monkeypatch)
    rec = Recorder()
    committer: GroupCommit[int, int] = GroupCommit(rec.flush, delay_s=0.002, fill=100)
    rec.gate.clear()
    first = committer.submit(1)
    await settle()
    queued = committer.submit(2)  # during the commit of item 1
    clock.now += 0.005  # the commit takes longer than the delay
    rec.gate.set()
    assert await asyncio.gather(first, queued) == [10, 20]
    assert rec.batches == [[1], [2]]
    assert committer.delayed == 0


async def test_no_delay_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    Clock(monkeypatch)  # frozen: a batch that waited for a timer would never go
    rec = Recorder()
    committer: GroupCommit[int, int] = GroupCommit(rec.flush)
    for i in range(3):
        assert await committer.append(i) == i * 10
    assert rec.batches == [[0], [1], [2]]


async def test_cancelled_while_waiting_cancels_the_queued_items(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock(monkeypatch)
    rec = Recorder()
    committer: GroupCommit[int, int] = GroupCommit(rec.flush, delay_s=1.0, fill=10)
    await committer.append(1)
    clock.now += 0.5
    waiting = committer.submit(2)
    await settle()
    assert committer._task is not None
    committer._task.cancel()
    await settle()
    assert waiting.cancelled()
    assert rec.batches == [[1]]
    assert committer._task is None


async def test_a_minimum_interval_spaces_batches_and_what_comes_meanwhile_joins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock(monkeypatch)
    rec = Recorder()
    committer: GroupCommit[int, int] = GroupCommit(rec.flush, min_interval_s=0.05)
    assert await committer.append(1) == 10  # the first ever: nothing to wait for
    futures = [committer.submit(2)]
    await settle()
    assert rec.batches == [[1]]  # 2 waits for the interval since batch 1 began
    futures += [committer.submit(i) for i in (3, 4)]
    await settle()
    assert rec.batches == [[1]]
    clock.now += 0.05
    assert await asyncio.gather(*futures) == [20, 30, 40]
    assert rec.batches == [[1], [2, 3, 4]]
    assert (committer.spaced, committer.delayed) == (1, 0)
    clock.now += 0.05  # a pause as long as the interval: the next goes at once
    assert await committer.append(5) == 50
    assert rec.batches == [[1], [2, 3, 4], [5]]
    assert committer.spaced == 1


async def test_the_minimum_interval_counts_from_the_start_of_the_last_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A commit that took longer than the interval: what queued behind it goes at once."""
    clock = Clock(monkeypatch)
    rec = Recorder()
    committer: GroupCommit[int, int] = GroupCommit(rec.flush, min_interval_s=0.05)
    rec.gate.clear()
    first = committer.submit(1)
    await settle()
    queued = committer.submit(2)
    clock.now += 0.06
    rec.gate.set()
    assert await asyncio.gather(first, queued) == [10, 20]
    assert rec.batches == [[1], [2]]
    assert committer.spaced == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_batch": 0}, "max_batch"),
        ({"delay_s": -0.001}, "delay_s"),
        ({"fill": 0}, "fill"),
        ({"min_interval_s": -1.0}, "min_interval_s"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, float], message: str) -> None:
    async def flush(items: Sequence[int]) -> list[int]:
        return list(items)

    with pytest.raises(ValueError, match=message):
        GroupCommit(flush, **kwargs)  # type: ignore[arg-type]
