"""In-process broker: the embedded default, for a single node.

Delivery is synchronous inside ``publish``: the subscriber's handler runs before
``publish`` returns, which keeps publish order trivially.
"""

from __future__ import annotations

from collections.abc import Sequence

from .base import MessageHandler, ResetHandler

__all__ = ["MemoryBroker"]


class MemoryBroker:
    # Its one subscriber is the node that publishes: a hub's publication would come
    # back only as its own echo, encoded for nothing.
    shared = False

    def __init__(self) -> None:
        self._channels: set[str] = set()
        self._on_message: MessageHandler | None = None

    async def start(self, on_message: MessageHandler, on_reset: ResetHandler) -> None:
        self._on_message = on_message

    async def close(self) -> None:
        self._channels.clear()
        self._on_message = None

    async def publish(self, channel: str, data: bytes) -> None:
        if channel in self._channels and self._on_message is not None:
            self._on_message(channel, data)

    async def publish_many(self, messages: Sequence[tuple[str, bytes]]) -> None:
        for channel, data in messages:
            await self.publish(channel, data)

    async def subscribe(self, *channels: str) -> None:
        self._channels.update(channels)

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)

    async def ping(self) -> None:
        return None

    @property
    def degraded(self) -> bool:
        return False  # one node: nothing travels between nodes
