"""The broker interface: fan-out of opaque bytes between the nodes of a cluster.

Guarantees an adapter must give:
- ``publish`` returns once the publication is handed to the broker; delivery is
  at-most-once (the database, not the broker, is the source of truth).
  ``publish_many`` is ``publish`` of each, in order, waiting once for them all.
- Publications from one node on one channel reach each subscriber in publish order.
- A node receives publications only on channels it subscribed to, its own included.
- When an adapter may have missed publications (connection lost, output buffer
  overflow), it calls ``on_reset`` once it is subscribed again, so that the node can
  make its clients resync by seq.
- ``shared`` is false when no other node can receive a publication (the in-process
  broker): the node's own publications, which only come back as its echo, are then
  not made at all.
- ``degraded`` is true while publications may not reach other nodes or not come back
  from them (the broker unreachable, a subscriber link being repaired); the node then
  catches its rooms up from the database (:mod:`server.catchup`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

__all__ = ["Broker", "MessageHandler", "ResetHandler", "room_channel", "user_channel"]

MessageHandler = Callable[[str, bytes], None]
ResetHandler = Callable[[], None]


def room_channel(room_id: str) -> str:
    return f"r:{room_id}"


def user_channel(user_id: str) -> str:
    return f"u:{user_id}"


class Broker(Protocol):
    shared: bool  # other nodes receive this node's publications

    async def start(self, on_message: MessageHandler, on_reset: ResetHandler) -> None:
        """Connect; ``on_message(channel, data)`` is then called for each publication."""

    async def close(self) -> None: ...

    async def publish(self, channel: str, data: bytes) -> None: ...

    async def publish_many(self, messages: Sequence[tuple[str, bytes]]) -> None: ...

    async def subscribe(self, *channels: str) -> None:
        """Subscribe to each of ``channels`` (at once: one command where the broker
        allows); channels already subscribed are left as they are. On return, every
        publication the broker handles from then on reaches the subscription."""

    async def unsubscribe(self, channel: str) -> None: ...

    async def ping(self) -> None:
        """Raise if the broker is unreachable."""

    @property
    def degraded(self) -> bool:
        """Publications may be lost between nodes right now."""
