"""Group commit: concurrent writes share one transaction, and so one fsync.

While a batch is being committed, new items queue up; when it finishes, everything
queued goes into the next batch. Under no load an item commits alone with no added
delay; under load batches grow by themselves. No timer is involved. One instance per
kind of write: messages (``append_messages``, then their fan-out), read receipts
(``set_reads``).

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
    item, in order."""

    def __init__(self, flush: Flush[Item, Result], max_batch: int = 512) -> None:
        self._flush = flush
        self._max_batch = max_batch
        self._pending: list[tuple[Item, asyncio.Future[Result]]] = []
        self._task: asyncio.Task[None] | None = None
        self.batches = 0  # committed
        self.items = 0  # committed, over all batches

    def submit(self, item: Item) -> asyncio.Future[Result]:
        """Queue one item now; the future gets its result once its batch was flushed, or
        the batch's error. Cancelling the future does not take the item back."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._task is None:
            self._task = asyncio.create_task(self._drain(), name="group-commit")
        return future

    async def append(self, item: Item) -> Result:
        """:meth:`submit`, and wait for the result."""
        return await self.submit(item)

    async def _drain(self) -> None:
        try:
            while self._pending:
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
                self.batches += 1
                self.items += len(batch)
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._task = None
