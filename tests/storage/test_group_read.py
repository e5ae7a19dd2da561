"""GroupRead: the keys asked for in one turn are read together, each caller answered
its own value; a failed read fails that round's callers only."""

from __future__ import annotations

import asyncio

import pytest

from storage.group_read import GroupRead


class Recorder:
    """A read that records the keys of each call; ``fail`` makes the next one raise."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.fail: Exception | None = None

    async def read(self, keys: list[str]) -> dict[str, str]:
        self.calls.append(sorted(keys))
        if self.fail is not None:
            exc, self.fail = self.fail, None
            raise exc
        return {k: k.upper() for k in keys if k != "missing"}


async def test_one_read_for_the_keys_of_a_turn() -> None:
    rec = Recorder()
    group: GroupRead[str, str] = GroupRead(rec.read)
    found = list(await asyncio.gather(group.get("a"), group.get("b"), group.get("missing")))
    assert found == ["A", "B", None]
    assert rec.calls == [["a", "b", "missing"]]
    assert await group.get("c") == "C"  # a later turn: a round of its own
    assert rec.calls[1:] == [["c"]]


async def test_the_same_key_twice_is_read_once_and_answers_both() -> None:
    rec = Recorder()
    group: GroupRead[str, str] = GroupRead(rec.read)
    assert list(await asyncio.gather(group.get("a"), group.get("a"))) == ["A", "A"]
    assert rec.calls == [["a"]]


async def test_a_failed_read_fails_its_round_only() -> None:
    rec = Recorder()
    group: GroupRead[str, str] = GroupRead(rec.read)
    rec.fail = ConnectionError("database down")
    results = await asyncio.gather(group.get("a"), group.get("b"), return_exceptions=True)
    assert [type(r) for r in results] == [ConnectionError, ConnectionError]
    assert list(await asyncio.gather(group.get("a"), group.get("b"))) == ["A", "B"]


async def test_a_cancelled_caller_leaves_the_others_their_answer() -> None:
    rec = Recorder()
    group: GroupRead[str, str] = GroupRead(rec.read)
    gone = asyncio.ensure_future(group.get("a"))
    kept = asyncio.ensure_future(group.get("b"))
    await asyncio.sleep(0)  # both are waiting for the round
    gone.cancel()
    assert await kept == "B"
    with pytest.raises(asyncio.CancelledError):
        await gone
