"""Read receipts told to the room (SPEC.md §4.4): the receipts committer's flush, and
the announcer that coalesces what it raised into ``receipts`` events.

Every online member reads a delivery within milliseconds of the others, and used to
tell the whole room, each: a room of n online members got n² frames per message. A
room now hears of its moved markers at most once per ``RECEIPTS_EVERY_S``: at once if
it heard nothing in the last interval (a lone reader's receipt is not delayed), else
in one event when the interval ends, naming every marker raised meanwhile at its
highest. A node stopping announces what it holds at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from protocol import encode
from protocol.frames import Event, ReadMarker
from storage.group_commit import Flush
from storage.types import ReadMark, ReadResult

from .clock import now_ms
from .hub import Hub
from .tasks import Background

__all__ = [
    "RECEIPTS_COMMIT_EVERY_S",
    "RECEIPTS_EVERY_S",
    "ReceiptAnnouncer",
    "commit_and_announce",
    "receipts_event",
]

log = logging.getLogger("confrere.receipts")

RECEIPTS_EVERY_S = 1.0
# Receipts share the database's single writer with sends, and each transaction waits
# for its fsync: committed at most this often, a batch holds every read that arrived
# meanwhile instead of a handful (a read's ack waits at most about twice this, and no
# client waits on it).
RECEIPTS_COMMIT_EVERY_S = 0.05

Markers = dict[str, int]  # user id -> read marker


def receipts_event(room_id: str, markers: Markers, ts: int) -> Event:
    reads = tuple(ReadMarker(user, upto) for user, upto in markers.items())
    return Event(kind="receipts", room=room_id, ts=ts, reads=reads)


class ReceiptAnnouncer:
    """One ``receipts`` event per room per interval (see the module's docstring)."""

    def __init__(self, hub: Hub, every: float = RECEIPTS_EVERY_S) -> None:
        self._hub = hub
        self._every = every
        # Rooms announced less than ``every`` ago -> the markers raised since then.
        self._held: dict[str, Markers] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks = Background(log, "receipts not announced")

    def held(self, room_id: str) -> Markers | None:
        """What waits for the room's interval to end (None: no interval running)."""
        return self._held.get(room_id)

    async def announce(self, raised: dict[str, Markers]) -> None:
        """Markers a committed batch raised, by room: told now or at the interval's end."""
        now: list[tuple[str, Markers]] = []
        for room_id, markers in raised.items():
            held = self._held.get(room_id)
            if held is None:
                now.append((room_id, markers))
                self._hold(room_id)
            else:
                for user, upto in markers.items():
                    held[user] = max(held.get(user, 0), upto)
        await self._publish(now)

    async def release_all(self) -> None:
        """Announce everything held now, ending every interval (the node stopping)."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        held, self._held = self._held, {}
        await self._publish([(room_id, m) for room_id, m in held.items() if m])

    def _hold(self, room_id: str) -> None:
        self._held[room_id] = {}
        loop = asyncio.get_running_loop()
        self._timers[room_id] = loop.call_later(self._every, self._interval_over, room_id)

    def _interval_over(self, room_id: str) -> None:
        del self._timers[room_id]
        markers = self._held.pop(room_id)
        if not markers:
            return  # a quiet interval: the next raise is told at once
        self._hold(room_id)
        self._tasks.spawn(self._publish([(room_id, markers)]))

    async def _publish(self, rooms: Sequence[tuple[str, Markers]]) -> None:
        if rooms:
            ts = now_ms()
            frames = [(room_id, encode(receipts_event(room_id, m, ts))) for room_id, m in rooms]
            await self._hub.publish_ephemerals(frames)


def commit_and_announce(
    set_reads: Callable[[Sequence[ReadMark]], Awaitable[list[ReadResult]]],
    announcer: ReceiptAnnouncer,
) -> Flush[ReadMark, ReadResult]:
    """The receipts committer's flush: one transaction for the batch, then the markers
    it raised handed to ``announcer`` (a read that moved nothing is told to nobody).
    Like the sends' flush, it runs in the committer's task, before the acks. (At most
    one batch per ``RECEIPTS_COMMIT_EVERY_S``: the committer's ``min_interval_s``.)"""

    async def flush(marks: Sequence[ReadMark]) -> list[ReadResult]:
        results = await set_reads(marks)
        raised: dict[str, Markers] = {}
        for mark, result in zip(marks, results, strict=True):
            if result.raised:  # a marker never goes down: the last raise is the highest
                raised.setdefault(mark.room_id, {})[mark.user_id] = result.upto
        if raised:
            await announcer.announce(raised)
        return results

    return flush
