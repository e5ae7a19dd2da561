"""Offline push: members of a room with no live connection get one content-free push
entry in the outbox when messages arrive for them.

The hot path only calls :meth:`OfflinePush.message_committed`, which records the room
in a dict and returns (no await, no I/O): the ack never waits for it. A background
task flushes every ``interval_s``: for each room that had messages, one read of its
members, one presence query, and one outbox transaction for the whole flush. So a
burst of messages in a room costs one push per offline member, and a member is not
pushed again for the same room within ``cooldown_s`` (per node: a few nodes may each
send one). A member's notification setting of the room (``room.settings``) applies:
"none" gets no push, "mentions" only for a message that mentions them (``send.mentions``,
the one thing the server knows of a mention; SPEC.md §4.2).

What a push says: ``"Nouveau message dans <room>"`` where <room> is the room's kind
("une conversation", "un groupe", "un dossier patient"). Never a room's name (end-to-end
encrypted: the server cannot read it, and a case's name may name the patient), a
message's content (encrypted too), nor its sender.

Pushes are a courtesy, not a record: a flush that fails (database unavailable) drops
its pushes and logs it; the messages themselves are safe and synced as always.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Protocol

from storage.base import RoomStore
from storage.errors import StorageError
from storage.outbox import NewNotification, OutboxStore
from storage.types import Room

from ..clock import now_ms
from ..presence import Presence, PresenceUnavailable

__all__ = ["OfflinePush", "push_title"]

log = logging.getLogger("confrere.push")


class PushPorts(OutboxStore, RoomStore, Protocol):
    """What offline push uses of the store."""


_KIND_LABELS = {
    "direct": "une conversation",
    "group": "un groupe",
    "patient_case": "un dossier patient",
}
_MAX_COOLDOWNS = 100_000  # entries kept before the oldest are forgotten


def push_title(room: Room) -> str:
    """The visible text of a push for ``room`` (see the module doc)."""
    return f"Nouveau message dans {_KIND_LABELS.get(room.kind, 'une conversation')}"


class OfflinePush:
    def __init__(
        self,
        store: PushPorts,
        presence: Presence,
        *,
        interval_s: float = 1.0,
        cooldown_s: float = 300.0,
        on_enqueued: Callable[[], None] | None = None,
        max_cooldowns: int = _MAX_COOLDOWNS,
    ) -> None:
        self.store = store
        self.presence = presence
        self.interval_s = interval_s
        self.cooldown_s = cooldown_s
        self.enqueued = 0
        # room -> (senders, members mentioned) since the last flush
        self._pending: dict[str, tuple[set[str], set[str]]] = {}
        # (user, room) -> monotonic time of the last push, oldest first: at most
        # ``max_cooldowns`` entries, the oldest forgotten first (then at worst one push
        # comes early).
        self._pushed: OrderedDict[tuple[str, str], float] = OrderedDict()
        self.max_cooldowns = max_cooldowns
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._kick = on_enqueued
        self._presence_down = False

    def message_committed(self, room_id: str, sender: str, mentions: Sequence[str] = ()) -> None:
        """Note a committed message and whom it mentions (hot path: no I/O)."""
        pending = self._pending.get(room_id)
        if pending is None:
            self._pending[room_id] = ({sender}, set(mentions))
            self._wake.set()
        else:
            pending[0].add(sender)
            pending[1].update(mentions)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="offline-push")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            await asyncio.sleep(self.interval_s)  # let a burst gather into one flush
            self._wake.clear()
            try:
                await self.flush()
            except StorageError as exc:
                log.warning("offline push flush failed: %s", exc)
            except Exception:
                log.exception("offline push flush failed")

    async def flush(self) -> int:
        """Enqueue the pushes of the rooms noted since the last flush; return how many."""
        pending, self._pending = self._pending, {}
        if not pending:
            return 0
        now = time.monotonic()
        items: list[NewNotification] = []
        for room_id, (senders, mentioned) in pending.items():
            members = await self.store.room_members(room_id)
            if members is None:
                continue
            quiet = await self.store.quiet_members(room_id)
            candidates = [
                u
                for u in members.roles
                if u not in senders
                and (quiet.get(u, "all") == "all" or (quiet[u] == "mentions" and u in mentioned))
            ]
            if not candidates:
                continue
            try:
                online = await self.presence.online(candidates)
            except PresenceUnavailable as exc:
                # Who is online is unknown (Redis down): keep the rooms for a later
                # flush rather than push to members who may be reading.
                for room, (was_from, was_mentioned) in pending.items():
                    kept = self._pending.setdefault(room, (set(), set()))
                    kept[0].update(was_from)
                    kept[1].update(was_mentioned)
                self._wake.set()
                if not self._presence_down:
                    log.warning("offline pushes wait for presence to answer: %s", exc)
                self._presence_down = True
                return 0
            self._presence_down = False
            title = push_title(members.room)
            for user in candidates:
                if (
                    user in online
                    or now - self._pushed.get((user, room_id), -1e18) < self.cooldown_s
                ):
                    continue
                self._remember((user, room_id), now)
                items.append(
                    NewNotification(
                        "push",
                        user,
                        "new_message",
                        {"room": room_id, "title": title},
                    )
                )
        if items:
            await self.store.enqueue_notifications(items, now_ms())
            self.enqueued += len(items)
            if self._kick is not None:
                self._kick()
        return len(items)

    def _remember(self, key: tuple[str, str], now: float) -> None:
        self._pushed[key] = now
        self._pushed.move_to_end(key)
        while len(self._pushed) > self.max_cooldowns:
            self._pushed.popitem(last=False)

    def cooldowns(self) -> int:
        """How many (user, room) cooldowns are remembered (at most ``max_cooldowns``)."""
        return len(self._pushed)
