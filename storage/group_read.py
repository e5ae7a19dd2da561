"""Group read: the look-ups by key asked for in one turn of the event loop, done as one.

During a reconnect storm hundreds of hellos check their session token within a few
milliseconds; each check alone is a statement, and each statement costs more in its
hand-off than in the database. :class:`GroupRead` collects the keys asked for until the
event loop's next turn and reads them all with one call (one statement, one reader
hop), as :class:`~storage.group_commit.GroupCommit` does for writes. A key the read
does not return is answered ``None``; if the read fails, every caller of that round
gets its error (the database is down for all of them alike).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["GroupRead"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class GroupRead(Generic[K, V]):
    def __init__(self, read: Callable[[list[K]], Awaitable[dict[K, V]]]) -> None:
        self._read = read
        self._waiting: dict[K, list[asyncio.Future[V | None]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._rounds: set[asyncio.Task[None]] = set()  # referenced until done
        self.rounds = 0

    async def get(self, key: K) -> V | None:
        """What the read returns for ``key``, read with the other keys of this turn."""
        loop = asyncio.get_running_loop()
        if self._waiting and self._loop is not loop:  # another loop's round is open
            return (await self._read([key])).get(key)
        future: asyncio.Future[V | None] = loop.create_future()
        if not self._waiting:
            self._loop = loop
            loop.call_soon(self._start)
        self._waiting.setdefault(key, []).append(future)
        return await future

    def _start(self) -> None:
        waiting, self._waiting = self._waiting, {}
        task = asyncio.ensure_future(self._round(waiting))
        self._rounds.add(task)
        task.add_done_callback(self._rounds.discard)

    async def _round(self, waiting: dict[K, list[asyncio.Future[V | None]]]) -> None:
        self.rounds += 1
        try:
            found = await self._read(list(waiting))
        except Exception as exc:
            for futures in waiting.values():
                for future in futures:
                    if not future.done():  # its awaiter was cancelled
                        future.set_exception(exc)
            return
        for key, futures in waiting.items():
            value = found.get(key)
            for future in futures:
                if not future.done():
                    future.set_result(value)
