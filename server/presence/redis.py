"""Presence across nodes in Redis, with expiry for dead nodes.

Keys: ``presence:node:<node id>`` is a heartbeat the node refreshes every
``NODE_TTL_S / 3`` seconds with a TTL of ``NODE_TTL_S``; ``presence:user:<user id>`` is
a hash node id -> number of that user's connections on that node. A user is online if
one of the nodes in their hash still has its heartbeat: when a node dies, its heartbeat
expires and its users fall offline without anyone cleaning up (stale fields are
removed lazily when read). Costs one HINCRBY per user whose count changed (connects
and disconnects of a loop turn go in one pipeline) and one SET per node every few
seconds, whatever the number of users.

Connections: counts are written by one task, one pipeline at a time, so a burst of
thousands of connects holds one connection, not one each (redis-py's pool stops at
100 and raises beyond, which lost users' presence under load); reads share at most
``MAX_READS`` connections and wait for a free one. A failure is logged, counted in
``confrere_presence_errors_total`` and never raised: presence is best effort.

On Redis Cluster (``redis+cluster://`` URL) the same keys spread over the masters by
hash slot: every command names one key, and reads of many keys go in a pipeline of
single-key commands (redis-py's cluster pipeline sends each master its share), never
in a multi-key command such as MGET, which a cluster refuses across slots.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Sequence

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisClusterException, RedisError

from ..broker.redis_base import no_retry
from ..broker.redis_cluster import cluster_client, is_cluster_url
from ..metrics import METRICS
from .base import PresenceUnavailable

__all__ = ["MAX_READS", "NODE_TTL_S", "RedisPresence"]

log = logging.getLogger("confrere.presence")

NODE_TTL_S = 30
MAX_READS = 16  # concurrent reads (online()), well under the client's pool

_FAILURES = (RedisError, RedisClusterException, OSError)


class RedisPresence:
    def __init__(self, url: str, node_id: str | None = None, ttl_s: int = NODE_TTL_S) -> None:
        self.node_id = node_id or secrets.token_hex(8)
        self._ttl = ttl_s
        self._redis: aioredis.Redis | RedisCluster
        if is_cluster_url(url):
            # No retry, as with one Redis: HINCRBY is not idempotent, and a retry after a
            # lost reply would count a connection twice. A failure makes the client
            # re-read the slot map for the next command (after a failover, say).
            self._redis = cluster_client(url, socket_timeout=10.0, retry=no_retry())
        else:
            self._redis = aioredis.Redis.from_url(
                url, socket_timeout=10.0, socket_connect_timeout=5.0
            )
        self._heartbeat: asyncio.Task[None] | None = None
        self._reads = asyncio.Semaphore(MAX_READS)
        # Count changes not written yet, and the round that will write them.
        self._deltas: dict[str, int] = {}
        self._round: asyncio.Future[None] | None = None
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None

    @property
    def _node_key(self) -> str:
        return f"presence:node:{self.node_id}"

    async def start(self) -> None:
        await self._redis.set(self._node_key, b"1", ex=self._ttl)
        self._heartbeat = asyncio.create_task(self._beat(), name="presence-heartbeat")
        self._writer = asyncio.create_task(self._write_counts(), name="presence-writer")

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self._ttl / 3)
            try:
                await self._redis.set(self._node_key, b"1", ex=self._ttl)
            except _FAILURES as exc:
                METRICS.presence_errors.inc()
                log.warning("presence heartbeat failed: %s", exc)

    async def close(self) -> None:
        for task in (self._heartbeat, self._writer):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._round is not None and not self._round.done():
            self._round.set_result(None)
        with contextlib.suppress(*_FAILURES):
            await self._redis.delete(self._node_key)  # our users go offline now
        await self._redis.aclose()

    async def connected(self, user_id: str) -> None:
        await self._count(user_id, 1)

    async def disconnected(self, user_id: str) -> None:
        await self._count(user_id, -1)

    async def _count(self, user_id: str, delta: int) -> None:
        """Note the change; return once the round that writes it is done."""
        if self._writer is None or self._writer.done():
            return  # not started, or closed: nothing would write it
        self._deltas[user_id] = self._deltas.get(user_id, 0) + delta
        if self._round is None:
            self._round = asyncio.get_running_loop().create_future()
            self._wake.set()
        await asyncio.shield(self._round)

    async def _write_counts(self) -> None:
        """The one writer of this node's fields: rounds never overlap, so the HDEL of
        a count that fell to 0 cannot cross a later HINCRBY of the same field."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            deltas, self._deltas = self._deltas, {}
            round_, self._round = self._round, None
            try:
                users = [user for user, delta in deltas.items() if delta]
                if users:
                    pipe = self._redis.pipeline(transaction=False)
                    for user in users:
                        pipe.hincrby(f"presence:user:{user}", self.node_id, deltas[user])
                    counts: list[int] = await pipe.execute()
                    gone = [u for u, n in zip(users, counts, strict=True) if n <= 0]
                    if gone:
                        pipe = self._redis.pipeline(transaction=False)
                        for user in gone:
                            pipe.hdel(f"presence:user:{user}", self.node_id)
                        await pipe.execute()
            except _FAILURES as exc:
                METRICS.presence_errors.inc()
                log.warning("presence update of %d users failed: %s", len(deltas), exc)
            finally:
                if round_ is not None and not round_.done():
                    round_.set_result(None)

    async def online(self, user_ids: Sequence[str]) -> set[str]:
        users = list(dict.fromkeys(user_ids))
        if not users:
            return set()
        async with self._reads:
            try:
                return await self._online(users)
            except _FAILURES as exc:
                METRICS.presence_errors.inc()
                raise PresenceUnavailable(str(exc)) from exc

    async def _online(self, users: list[str]) -> set[str]:
        pipe = self._redis.pipeline(transaction=False)
        for user in users:
            pipe.hkeys(f"presence:user:{user}")
        node_lists: list[list[bytes]] = await pipe.execute()
        nodes = sorted({n for ns in node_lists for n in ns})
        alive: set[bytes] = set()
        if nodes:
            beats = self._redis.pipeline(transaction=False)
            for node in nodes:
                beats.exists(f"presence:node:{node.decode()}")
            found: list[int] = await beats.execute()
            alive = {n for n, beat in zip(nodes, found, strict=True) if beat}
        result: set[str] = set()
        stale = self._redis.pipeline(transaction=False)
        for user, ns in zip(users, node_lists, strict=True):
            if any(n in alive for n in ns):
                result.add(user)
            for n in ns:
                if n not in alive:
                    stale.hdel(f"presence:user:{user}", n)
        with contextlib.suppress(*_FAILURES):
            await stale.execute()
        return result
