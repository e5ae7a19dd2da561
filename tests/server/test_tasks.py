"""server.tasks.Background: started tasks are held until they end, failures logged."""

from __future__ import annotations

import asyncio
import logging

import pytest

from server.tasks import Background

log = logging.getLogger("test.tasks")


async def test_a_task_is_held_until_it_ends_and_its_failure_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tasks = Background(log, "thing not done")
    release = asyncio.Event()

    async def fails() -> None:
        await release.wait()
        raise RuntimeError("boom")

    tasks.spawn(fails())
    assert len(tasks) == 1
    running = list(tasks)
    release.set()
    with caplog.at_level(logging.ERROR, logger="test.tasks"):
        await asyncio.gather(*running, return_exceptions=True)
        await asyncio.sleep(0)  # the done callback runs on the next turn
    assert len(tasks) == 0
    assert [r.getMessage() for r in caplog.records] == ["thing not done: boom"]


async def test_a_cancelled_or_finished_task_is_not_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tasks = Background(log, "thing not done")

    async def waits() -> None:
        await asyncio.Event().wait()

    async def finishes() -> None:
        return None

    tasks.spawn(waits())
    (waiting,) = list(tasks)
    tasks.spawn(finishes())
    running = list(tasks)
    waiting.cancel()
    with caplog.at_level(logging.ERROR, logger="test.tasks"):
        await asyncio.gather(*running, return_exceptions=True)
        await asyncio.sleep(0)
    assert len(tasks) == 0
    assert caplog.records == []
