"""While the broker is degraded, a node's rooms catch up from the database.

Local fan-out never needs the broker (:class:`~server.hub.Hub` delivers a node's own
publications from memory), but what other nodes commit reaches this node's clients
only through it. While :attr:`Broker.degraded` holds (Redis down, a subscriber link
being repaired), every ``CATCH_UP_S`` this task reads, for each room with a local
connection, the timeline items after the highest seq delivered here and hands them to
the room's local connections, as the broker would have (a welcome notes the rooms'
``last_seq``; a room attached later by an event starts from the first pass), and an
item the broker brings later anyway is dropped. So the gap a client can notice is
about ``CATCH_UP_S`` plus one read per local room, whatever the outage's length; when
the broker is back, the node's reset still has every client resync (close 1012),
which covers what this does not (to-device messages, rooms joined meanwhile on
another node).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from protocol import encode
from storage.base import RoomStore, TimelineStore
from storage.errors import StorageError

from .hub import Hub
from .wire import item_frame

__all__ = ["CATCH_UP_S", "catch_up", "run_catch_up"]

log = logging.getLogger("confrere.catchup")


class _CatchUpPorts(RoomStore, TimelineStore, Protocol):
    """What the catch-up uses of the store."""


CATCH_UP_S = 2.0
_PAGE = 100


async def catch_up(hub: Hub, store: _CatchUpPorts) -> int:
    """One pass over the local rooms; returns how many items were handed out."""
    handed = 0
    for room_id in hub.local_rooms():
        after = hub.seen(room_id)
        if after is None:  # attached since its welcome by an event: start from now
            room = await store.room(room_id)
            if room is not None:
                hub.note_seen(room_id, room.last_seq)
            continue
        items = await store.timeline(room_id, after, _PAGE)
        for item in items:
            if item.seq <= (hub.seen(room_id) or 0):
                continue  # the broker came back during the read and brought it
            leave = item.meta.get("user") if item.kind == "member.left" else None
            hub.deliver_item(room_id, item.seq, encode(item_frame(item)), leave, item.device)
        handed += len(items)
    return handed


async def run_catch_up(hub: Hub, store: _CatchUpPorts, interval_s: float = CATCH_UP_S) -> None:
    """Until cancelled: a pass every ``interval_s`` while the broker is degraded."""
    healthy_since = 0.0
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(interval_s)
        if not hub.broker.degraded:
            if not healthy_since:
                healthy_since = loop.time()
            elif loop.time() - healthy_since > 60:
                hub.forget_caught()
            continue
        healthy_since = 0.0
        try:
            handed = await catch_up(hub, store)
        except StorageError as exc:
            log.warning("catch-up from the database failed: %s", exc)
            continue
        if handed:
            log.info("broker degraded: %d item(s) handed out from the database", handed)
