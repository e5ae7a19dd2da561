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
    item, in order. ``delay_s`` and ``fill``: the commit delay (module docstring)."""

    def __init__(
        self,
        flush: Flush[Item, Result],
        max_batch: int = 512,
        delay_s: float = 0.0,
        fill: int = 32,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, not {max_batch}")
        if delay_s < 0:
            raise ValueError(f"delay_s must not be negative, not {delay_s}")
        if fill < 1:
            raise ValueError(f"fill must be at least 1, not {fill}")
        self._flush = flush
        self._max_batch = max_batch
        self._delay_s = delay_s
        self._fill = min(fill, max_batch)
        self._pending: list[tuple[Item, asyncio.Future[Result]]] = []
        self._first_at = 0.0  # loop time the oldest pending item was queued
        self._last_end = float("-inf")  # loop time the last batch was done
        self._filled: asyncio.Future[None] | None = None  # woken at ``fill`` items
        self._task: asyncio.Task[None] | None = None
        self.batches = 0  # committed
        self.items = 0  # committed, over all batches
        self.delayed = 0  # batches that waited for more items

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

    async def _drain(self) -> None:
        try:
            while self._pending:
                try:
                    await self._linger()
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
