"""Group commit: concurrent writes share one transaction, and so one fsync.

While a batch is being committed, new items queue up; when it finishes, everything
queued goes into the next batch. Under no load an item commits alone with no added
delay; under load batches grow by themselves. One instance per kind of write:
messages (``append_messages``, then their fan-out), read receipts (``set_reads``).

Commit delay (``delay_s``, off by default; as PostgreSQL's ``commit_delay``): when a
commit takes less time than the next write takes to arrive, batches stay at one or two
items and every item pays a whole transaction and its fsync. So while writes keep
coming (the last batch ended less than ``delay_s`` ago), a batch waits until its
oldest item is ``delay_s`` old or ``fill`` items are queued, whichever comes first.
An item that already waited that long (behind a slow commit) goes at once, and an item
arriving after a pause commits alone at once, as without the delay.

Minimum interval (``min_interval_s``, off by default): a batch starts at least that
long after the previous one started, whatever comes meanwhile, and takes everything
queued by then. For writes nobody waits on (read receipts): they share the one
database writer with sends, and spaced out, a commit holds many instead of a few.

The flush runs in the committer's own task, not in the callers': a caller that goes
away (its connection closed, its request cancelled) after ``append`` was called does
not stop its item from being flushed, nor what the flush does after the commit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["Flush", "GroupCommit"]

Item = TypeVar("Item")  # what is stored
Result = TypeVar("Result")  # what storing one item returns

Flush = Callable[[Sequence[Item]], Awaitable[list[Result]]]


class GroupCommit(Generic[Item, Result]):
    """``flush(items)`` stores a batch in one transaction and returns one result per
    item, in order. ``delay_s`` and ``fill``: the commit delay; ``min_interval_s``: the
    least time between two batches' starts (module docstring)."""

    def __init__(
        self,
        flush: Flush[Item, Result],
        max_batch: int = 512,
        delay_s: float = 0.0,
        fill: int = 32,
        min_interval_s: float = 0.0,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, not {max_batch}")
        if delay_s < 0:
            raise ValueError(f"delay_s must not be negative, not {delay_s}")
        if fill < 1:
            raise ValueError(f"fill must be at least 1, not {fill}")
        if min_interval_s < 0:
            raise ValueError(f"min_interval_s must not be negative, not {min_interval_s}")
        self._flush = flush
        self._max_batch = max_batch
        self._delay_s = delay_s
        self._fill = min(fill, max_batch)
        self._min_interval_s = min_interval_s
        self._last_start = float("-inf")  # loop time the last batch's flush began
        self._pending: list[tuple[Item, asyncio.Future[Result]]] = []
        self._first_at = 0.0  # loop time the oldest pending item was queued
        self._last_end = float("-inf")  # loop time the last batch was done
        self._filled: asyncio.Future[None] | None = None  # woken at ``fill`` items
        self._task: asyncio.Task[None] | None = None
        self.batches = 0  # committed
        self.items = 0  # committed, over all batches
        self.delayed = 0  # batches that waited for more items (commit delay)
        self.spaced = 0  # batches that waited for the minimum interval

    def submit(self, item: Item) -> asyncio.Future[Result]:
        """Queue one item now; the future gets its result once its batch was flushed, or
        the batch's error. Cancelling the future does not take the item back."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = loop.create_future()
        pending = self._pending
        if not pending:
            self._first_at = loop.time()
        pending.append((item, future))
        if self._task is None:
            self._task = asyncio.create_task(self._drain(), name="group-commit")
        elif self._filled is not None and len(pending) >= self._fill:
            _wake(self._filled)
        return future

    async def append(self, item: Item) -> Result:
        """:meth:`submit`, and wait for the result."""
        return await self.submit(item)

    async def _linger(self) -> None:
        """The commit delay: wait for more items while writes keep coming."""
        if self._delay_s <= 0 or len(self._pending) >= self._fill:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        if now - self._last_end >= self._delay_s:  # after a pause: no wait
            return
        wait = self._first_at + self._delay_s - now
        if wait <= 0:  # waited enough behind the last commit
            return
        filled = self._filled = loop.create_future()
        timer = loop.call_later(wait, _wake, filled)
        try:
            await filled
        finally:
            timer.cancel()
            self._filled = None
        self.delayed += 1

    async def _space(self) -> None:
        """The minimum interval: wait until it has passed since the last batch began."""
        loop = asyncio.get_running_loop()
        wait = self._last_start + self._min_interval_s - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
            self.spaced += 1
        self._last_start = loop.time()

    async def _drain(self) -> None:
        try:
            while self._pending:
                try:
                    await self._linger()
                    if self._min_interval_s:
                        await self._space()
                except asyncio.CancelledError:
                    for _, future in self._pending:
                        future.cancel()
                    self._pending.clear()
                    raise
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                try:
                    results = await self._flush([m for m, _ in batch])
                    if len(results) != len(batch):
                        raise RuntimeError(f"flush returned {len(results)} of {len(batch)}")
                except BaseException as exc:  # every waiter of the batch gets the error
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    if isinstance(exc, asyncio.CancelledError):
                        for _, future in self._pending:
                            future.cancel()
                        self._pending.clear()
                        raise
                    continue
                finally:
                    self._last_end = asyncio.get_running_loop().time()
                self.batches += 1
                self.items += len(batch)
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._task = None


def _wake(filled: asyncio.Future[None]) -> None:
    if not filled.done():
        filled.set_result(None)
