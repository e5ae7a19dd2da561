"""Redis pub/sub broker: fan-out between nodes.

Two connections per node, whatever the number of rooms or users:

- a subscriber connection, read by one task. Its socket has no read timeout (redis-py's
  default 5 s timeout kills blocking readers); liveness is checked by a PING after each
  idle period instead. On any error, or when Redis drops us for falling behind
  (``client-output-buffer-limit pubsub``), it reconnects with backoff, subscribes to
  every channel again, then calls ``on_reset`` so the node has its clients resync: the
  publications in between are gone, and the database has them all.
- a publisher connection, fed by one task that sends every queued PUBLISH in one
  pipeline per round trip. Awaiting one PUBLISH per message would cap a node at a few
  thousand messages/s and pile up connections; the pipeline carries tens of thousands.
  ``publish`` only queues (bounded): while Redis is down, sends are still committed and
  acked, publications over the bound are dropped and counted, and clients catch up
  after the reset.

Channel layout: ``r:<room id>`` and ``u:<user id>``, one channel per room and user, so
that a node receives only what its local connections need. On Redis Cluster the same
names map onto sharded pub/sub (SSUBSCRIBE/SPUBLISH): each channel hashes to one slot
and its traffic stays on that shard instead of being broadcast to every node of the
cluster; see README "Running several nodes".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .base import MessageHandler, ResetHandler

__all__ = ["RedisBroker"]

log = logging.getLogger("confrere.broker.redis")

_SUBSCRIBE_CHUNK = 1000
_PIPELINE_MAX = 2000
_IDLE_PING_S = 5.0
_FAILURES = (RedisError, OSError, asyncio.TimeoutError)


class RedisBroker:
    def __init__(self, url: str, *, max_queued: int = 200_000) -> None:
        self._url = url
        self._max_queued = max_queued
        self._channels: set[str] = set()
        self._queue: deque[tuple[str, bytes]] = deque()
        self._wake = asyncio.Event()
        self._has_channels = asyncio.Event()
        self._on_message: MessageHandler | None = None
        self._on_reset: ResetHandler | None = None
        self._publisher: aioredis.Redis | None = None
        self._sub_client: aioredis.Redis | None = None
        self._pubsub: Any = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        self.published = 0
        self.dropped = 0
        self.resets = 0

    def _client(self, *, read_timeout: float | None) -> aioredis.Redis:
        options: dict[str, Any] = {}
        if not self._url.startswith("unix:"):
            options["socket_keepalive"] = True  # notice a peer that vanished silently
        return aioredis.Redis.from_url(
            self._url,
            socket_timeout=read_timeout,
            socket_connect_timeout=5.0,
            single_connection_client=True,
            **options,
        )

    async def start(self, on_message: MessageHandler, on_reset: ResetHandler) -> None:
        """Connect both connections; raises if Redis cannot be reached at start-up."""
        self._on_message, self._on_reset = on_message, on_reset
        self._publisher = self._client(read_timeout=10.0)
        await self._publisher.ping()
        await self._connect_subscriber()
        self._tasks = [
            asyncio.create_task(self._read_loop(), name="redis-subscriber"),
            asyncio.create_task(self._publish_loop(), name="redis-publisher"),
        ]

    async def close(self) -> None:
        self._closed = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, *_FAILURES):
                await task
        await self._drop_subscriber()
        if self._publisher is not None:
            with contextlib.suppress(*_FAILURES):
                await self._publisher.aclose()

    async def ping(self) -> None:
        assert self._publisher is not None
        await self._publisher.ping()

    # -- publishing

    async def publish(self, channel: str, data: bytes) -> None:
        if len(self._queue) >= self._max_queued:
            self.dropped += 1  # Redis is down or far behind; clients resync after reset
            return
        self._queue.append((channel, data))
        self._wake.set()

    async def _publish_loop(self) -> None:
        assert self._publisher is not None
        delay = 0.05
        while not self._closed:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                count = min(len(self._queue), _PIPELINE_MAX)
                pipe = self._publisher.pipeline(transaction=False)
                for _ in range(count):
                    channel, data = self._queue.popleft()
                    pipe.publish(channel, data)
                try:
                    await pipe.execute()
                except _FAILURES as exc:
                    self.dropped += count
                    log.warning("publish of %d messages failed: %s", count, exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 2.0)
                    continue
                delay = 0.05
                self.published += count

    # -- subscribing

    async def subscribe(self, channel: str) -> None:
        if channel in self._channels:
            return
        self._channels.add(channel)
        if self._pubsub is not None:
            with contextlib.suppress(*_FAILURES):  # the reader resubscribes on reconnect
                await self._pubsub.subscribe(channel)
        self._has_channels.set()

    async def unsubscribe(self, channel: str) -> None:
        if channel not in self._channels:
            return
        self._channels.discard(channel)
        if self._pubsub is not None:
            with contextlib.suppress(*_FAILURES):
                await self._pubsub.unsubscribe(channel)

    async def _connect_subscriber(self) -> None:
        self._sub_client = self._client(read_timeout=None)
        pubsub = self._sub_client.pubsub()
        channels = list(self._channels)
        for i in range(0, len(channels), _SUBSCRIBE_CHUNK):
            await pubsub.subscribe(*channels[i : i + _SUBSCRIBE_CHUNK])
        if not channels:
            await self._sub_client.ping()  # fail now, not at the first subscription
        self._pubsub = pubsub

    async def _drop_subscriber(self) -> None:
        pubsub, client = self._pubsub, self._sub_client
        self._pubsub = self._sub_client = None
        if pubsub is not None:
            with contextlib.suppress(*_FAILURES):
                await pubsub.aclose()
        if client is not None:
            with contextlib.suppress(*_FAILURES):
                await client.aclose()

    async def _read_loop(self) -> None:
        while not self._closed:
            try:
                await self._read_until_failure()
            except _FAILURES as exc:
                log.warning("redis subscriber lost: %s; reconnecting", exc)
            if self._closed:
                return
            await self._reconnect()

    async def _read_until_failure(self) -> None:
        on_message = self._on_message
        assert on_message is not None
        while not self._closed:
            pubsub = self._pubsub
            if pubsub is None or not pubsub.subscribed:
                # Nothing to read before the first subscription: wait for one, checking
                # the link meanwhile.
                self._has_channels.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._has_channels.wait(), _IDLE_PING_S)
                if self._sub_client is not None:
                    await self._sub_client.ping()
                continue
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=_IDLE_PING_S)
            if message is None:
                await pubsub.ping()  # idle: prove the connection is alive
                continue
            if message["type"] in ("message", "smessage"):
                channel = message["channel"]
                on_message(
                    channel.decode() if isinstance(channel, bytes) else channel, message["data"]
                )

    async def _reconnect(self) -> None:
        await self._drop_subscriber()
        delay = 0.05
        while not self._closed:
            try:
                await self._connect_subscriber()
            except _FAILURES as exc:
                log.info("redis not reachable yet: %s", exc)
                await self._drop_subscriber()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            self.resets += 1
            log.warning(
                "redis subscriber back with %d channels: resyncing clients", len(self._channels)
            )
            if self._on_reset is not None:
                self._on_reset()
            return
