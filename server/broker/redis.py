"""Redis pub/sub broker: fan-out between nodes.

Two connections per node, whatever the number of rooms or users:

- a subscriber connection (one link, see ``redis_base``), whose publications are
  parsed and handed to the hub as the bytes arrive (``resp``); liveness is checked by
  a PING after each idle period. On any error, or when Redis
  drops us for falling behind (``client-output-buffer-limit pubsub``), it reconnects
  with backoff, subscribes to every channel again, then calls ``on_reset`` so the node
  has its clients resync: the publications in between are gone, and the database has
  them all.
- a publisher connection (``resp.Pipeline``), fed by one task that sends every queued
  PUBLISH in one write per round trip. Awaiting one PUBLISH per message would cap a node at a few
  thousand messages/s and pile up connections; the pipeline carries tens of thousands.
  ``publish`` only queues (bounded): while Redis is down, sends are still committed and
  acked, publications over the bound are dropped and counted, and clients catch up
  after the reset.

Both behaviours live in ``redis_base``, shared with the Redis Cluster broker.

Channel layout: ``r:<room id>`` and ``u:<user id>``, one channel per room and user, so
that a node receives only what its local connections need. On Redis Cluster the same
names map onto sharded pub/sub (SSUBSCRIBE/SPUBLISH): each channel hashes to one slot
and its traffic stays on that shard instead of being broadcast to every node of the
cluster; see ``redis_cluster`` and README "Redis Cluster".
"""

from __future__ import annotations

import contextlib
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from .redis_base import FAILURES, IDLE_PING_S, Publication, RedisBrokerBase, no_retry
from .resp import Pipeline, pack

__all__ = ["RedisBroker"]

_PING = pack("PING")


class RedisBroker(RedisBrokerBase):
    def __init__(
        self, url: str, *, max_queued: int = 200_000, idle_ping_s: float = IDLE_PING_S
    ) -> None:
        super().__init__(max_queued=max_queued, idle_ping_s=idle_ping_s)
        self._url = url
        self._publisher: Pipeline | None = None

    def _client(self, *, read_timeout: float | None, **extra: Any) -> aioredis.Redis:
        options: dict[str, Any] = {}
        if not self._url.startswith("unix:"):
            options["socket_keepalive"] = True  # notice a peer that vanished silently
        return aioredis.Redis.from_url(
            self._url,
            socket_timeout=read_timeout,
            socket_connect_timeout=5.0,
            retry=no_retry(),
            **options,
            **extra,
        )

    async def _open_publisher(self) -> None:
        self._publisher = Pipeline(self._client(read_timeout=10.0), reply_timeout_s=10.0)
        await self.ping()

    async def _close_connections(self) -> None:
        if self._publisher is not None:
            with contextlib.suppress(*FAILURES):
                await self._publisher.close()

    async def ping(self) -> None:
        assert self._publisher is not None
        if await self._publisher.execute([_PING]):
            raise ResponseError("redis refused PING")

    async def _send(self, batch: list[Publication]) -> int:
        # Packed and written at once, the replies counted as they arrive (``resp``):
        # a redis-py pipeline cost more per PUBLISH than the rest of the message's path.
        assert self._publisher is not None
        return await self._publisher.execute([pack("PUBLISH", c, d) for c, d in batch])

    def _subscriber_client(self, key: str) -> aioredis.Redis:
        return self._client(read_timeout=None)
