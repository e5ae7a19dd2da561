"""Redis Cluster broker: sharded pub/sub (SSUBSCRIBE/SPUBLISH), Redis 7 or later.

URL: ``redis+cluster://[user:password@]host:port[,host:port...]`` (``rediss+cluster://``
for TLS); the hosts are startup nodes, any of them is enough to discover the cluster.

Channel layout on the cluster. The channels are ``r:<room id>`` and ``u:<user id>``.
A sharded channel hashes like a key: CRC16 of the whole name (there are no ``{hash
tags}`` in it) modulo 16384 gives its slot, and the master owning that slot carries all
of its traffic: SPUBLISH goes to that master only, and only nodes subscribed there get
it. With classic PUBLISH every message is broadcast over the cluster bus to every node;
sharded, a room costs one shard, and rooms and users spread evenly over the masters as
the cluster grows (no hash tag would pin them together on one shard).

Publishing: one round trip per batch (see ``redis_base``). The queued SPUBLISHes are
grouped by master (by the slot map of a ``RedisCluster`` client kept for that alone),
and each master's share goes, in queue order, in one write on that master's lean
connection (``resp.Pipeline``, as the plain broker's publisher), all masters in
parallel. A channel always maps to one slot, hence one master, so publications on one
channel keep their order; batches follow one another. A MOVED reply (slot migrated
meanwhile) or an ASK (slot being migrated) is re-sent once to the master it names,
after the rest of that share: still in order for that channel; the slot map is then
read again before the next batch. Any other failure drops that master's share
(counted) and makes the map be re-read; the master is then skipped (its publications
dropped and counted at once) for a backoff that doubles up to 2 s, so a master that is
down costs the others neither latency nor round trips. Nothing is retried otherwise,
since a retried write could deliver a publication twice.

Subscribing: one link (a subscriber connection, see ``redis_base``) per master, each
holding the SSUBSCRIBEs of the channels whose slots that master owns, routed by a slot
map of our own (a second, idle ``RedisCluster`` client) that is re-read on every repair.
When a master dies, its link fails; the others keep delivering. The repair task
reconnects to it with backoff (or, after a failover, to the replica promoted in its
place), resubscribes its channels and calls ``on_reset``. When a slot moves (resharding,
failover), Redis unsubscribes us from its channels on the old owner (a ``sunsubscribe``
we did not ask for): that link is repaired the same way, against the new slot map.

redis-py's ``ClusterPubSub`` is not used: ``get_sharded_message`` without a target
waits out its timeout on each node in turn (a message on the third master waits for
two idle timeouts), its per-node connections reconnect and resubscribe silently on the
next read, and after a slot-map refresh it moves subscriptions in the background. All
three would lose publications without telling us, and ``on_reset`` would not be called.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import hiredis
import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.exceptions import RedisClusterException

from .redis_base import FAILURES, IDLE_PING_S, Publication, RedisBrokerBase, no_retry
from .resp import Pipeline, pack

__all__ = ["ClusterURL", "RedisClusterBroker", "cluster_client", "is_cluster_url"]

log = logging.getLogger("confrere.broker.redis")

_SCHEMES = {"redis+cluster": False, "rediss+cluster": True}
_SKIP_MIN_S = 0.05
_SKIP_MAX_S = 2.0
_PING = pack("PING")
_ASKING = pack("ASKING")


def _redirection(error: hiredis.ReplyError, sent_to: str) -> tuple[str, bool] | None:
    """``("host:port", asking)`` of a MOVED or ASK answer, else None. An empty host
    means the one the command was sent to (Redis 7 when it knows no better)."""
    kind, _, rest = str(error).partition(" ")
    if kind not in ("MOVED", "ASK"):
        return None
    target = rest.partition(" ")[2]
    if target.startswith(":"):
        target = sent_to.rpartition(":")[0] + target
    return target, kind == "ASK"


def is_cluster_url(url: str) -> bool:
    return url.partition("://")[0] in _SCHEMES


@dataclass(frozen=True)
class ClusterURL:
    """``redis+cluster://[user:password@]host:port[,host:port...]``, parsed."""

    nodes: tuple[tuple[str, int], ...]
    username: str | None = None
    password: str | None = None
    ssl: bool = False

    @classmethod
    def parse(cls, url: str) -> ClusterURL:
        scheme, sep, rest = url.partition("://")
        if not sep or scheme not in _SCHEMES:
            raise ValueError(f"not a Redis Cluster URL: {url!r}")
        netloc, _, path = rest.partition("/")
        if path not in ("", "0") or "?" in rest or "#" in rest:
            raise ValueError(f"Redis Cluster URL takes no database, query or fragment: {url!r}")
        userinfo, _, hosts = netloc.rpartition("@")
        username, _, password = userinfo.partition(":")
        nodes: list[tuple[str, int]] = []
        for item in hosts.split(","):
            item = item.strip()
            if not item:
                continue
            if item.startswith("["):  # [ipv6]:port
                host, _, port = item[1:].partition("]")
                port = port.removeprefix(":")
            else:
                host, _, port = item.partition(":")
            if not host:
                raise ValueError(f"empty host in Redis Cluster URL: {url!r}")
            nodes.append((host, int(port) if port else 6379))
        if not nodes:
            raise ValueError(f"Redis Cluster URL names no node: {url!r}")
        return cls(
            nodes=tuple(nodes),
            username=unquote(username) or None,
            password=unquote(password) or None,
            ssl=_SCHEMES[scheme],
        )

    def options(self) -> dict[str, Any]:
        """Connection options shared by cluster clients and plain per-node clients."""
        return {"username": self.username, "password": self.password, "ssl": self.ssl}


def cluster_client(url: str, **options: Any) -> RedisCluster:
    """A ``RedisCluster`` client for a ``redis+cluster://`` URL (not yet initialised)."""
    parsed = ClusterURL.parse(url)
    options.setdefault("socket_connect_timeout", 5.0)
    return RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in parsed.nodes],
        # Partly covered slot maps still route the covered channels and keys.
        require_full_coverage=False,
        **parsed.options(),
        **options,
    )


class RedisClusterBroker(RedisBrokerBase):
    _sharded = True

    def __init__(
        self, url: str, *, max_queued: int = 200_000, idle_ping_s: float = IDLE_PING_S
    ) -> None:
        super().__init__(max_queued=max_queued, idle_ping_s=idle_ping_s)
        self._url = ClusterURL.parse(url)
        # The publisher's slot map (its connections serve only to read it); the
        # publications go on lean connections, one per master (``_masters``).
        self._slots = cluster_client(url, socket_timeout=10.0, retry=no_retry())
        self._slots_stale = False  # a failure or a redirection: read the map again
        self._masters: dict[str, Pipeline] = {}  # "host:port" -> its publisher connection
        self._topology = cluster_client(url, socket_timeout=10.0, retry=no_retry())
        self._topology_read = False
        self._skip_until: dict[str, float] = {}  # master -> loop time its share is sent again
        self._skip_for: dict[str, float] = {}  # master -> current skip backoff

    async def _open_publisher(self) -> None:
        await self._slots.initialize()  # raises if no startup node answers

    async def _close_connections(self) -> None:
        masters, self._masters = self._masters, {}
        for pipeline in masters.values():
            with contextlib.suppress(*FAILURES):
                await pipeline.close()
        for client in (self._slots, self._topology):
            with contextlib.suppress(*FAILURES):
                await client.aclose()

    def _master(self, name: str) -> Pipeline:
        """The publisher connection to master ``name`` ("host:port"), opened on first use
        and again after a failure (``resp.Pipeline`` reconnects)."""
        pipeline = self._masters.get(name)
        if pipeline is None:
            host, _, port = name.rpartition(":")
            client = aioredis.Redis(
                host=host.strip("[]"),
                port=int(port),
                socket_timeout=10.0,
                socket_connect_timeout=5.0,
                socket_keepalive=True,
                retry=no_retry(),
                **self._url.options(),
            )
            pipeline = self._masters[name] = Pipeline(client, reply_timeout_s=10.0)
        return pipeline

    async def _read_slots(self) -> None:
        """The slot map, read again if a failure or a redirection made it stale; the
        connections to masters no longer in it are closed."""
        if not self._slots_stale:
            return
        await self._slots.initialize()
        self._slots_stale = False
        current = {node.name for node in self._slots.get_primaries()}
        for name in [name for name in self._masters if name not in current]:
            with contextlib.suppress(*FAILURES):
                await self._masters.pop(name).close()

    async def ping(self) -> None:
        """Raises if no master answers. One master down is not the node's problem (all
        nodes share it) and is not a reason to take it out of the load balancer."""
        await self._slots.initialize()
        primaries = self._slots.get_primaries()
        results = await asyncio.gather(
            *(self._master(node.name).execute([_PING]) for node in primaries),
            return_exceptions=True,
        )
        if not any(result == 0 for result in results):
            failure = next((r for r in results if isinstance(r, BaseException)), None)
            raise RedisClusterException(f"no Redis Cluster master answers: {failure}")

    async def _send(self, batch: list[Publication]) -> int:
        await self._read_slots()
        failed = 0
        shares: dict[str, list[Publication]] = defaultdict(list)
        for channel, data in batch:
            try:
                node = self._slots.get_node_from_key(channel)
            except FAILURES:
                node = None
            if node is None:  # slot not covered (yet)
                failed += 1
            else:
                shares[node.name].append((channel, data))
        refresh = failed > 0
        now = asyncio.get_running_loop().time()
        sending: list[tuple[str, list[Publication]]] = []
        for name, share in shares.items():
            if self._skip_until.get(name, 0.0) > now:
                failed += len(share)  # down a moment ago: do not wait on it again yet
            else:
                sending.append((name, share))
        results = await asyncio.gather(
            *(self._send_share(name, share) for name, share in sending), return_exceptions=True
        )
        for (name, share), result in zip(sending, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result
                log.warning("publish of %d messages to %s failed: %s", len(share), name, result)
                failed += len(share)
                delay = min(self._skip_for.get(name, _SKIP_MIN_S / 2) * 2, _SKIP_MAX_S)
                self._skip_for[name] = delay
                self._skip_until[name] = now + delay
                refresh = True
            else:
                self._skip_until.pop(name, None)
                self._skip_for.pop(name, None)
                refused, redirected = result
                failed += refused  # cluster down, moved twice...
                refresh = refresh or refused > 0 or redirected
        if refresh:
            await self._slots.aclose()  # forget the slot map: read it before the next batch
            self._slots_stale = True
        if failed == len(batch) and batch:
            raise RedisClusterException(f"no master took any of {len(batch)} publications")
        return failed

    async def _send_share(self, name: str, share: list[Publication]) -> tuple[int, bool]:
        """One master's share in one write; returns how many were refused, and whether
        any was redirected. A publication answered MOVED (its slot has a new owner) or
        ASK (being migrated) is sent again to the master named, once, after the rest of
        the share: the publications of one channel stay in order, as all of them get
        the same answer from the master they were sent to."""
        refused = 0
        again: dict[str, list[bytes]] = defaultdict(list)
        for index, error in await self._master(name).refused(
            [pack("SPUBLISH", channel, data) for channel, data in share]
        ):
            target = _redirection(error, name)
            if target is None:
                refused += 1
                continue
            master, asking = target
            if asking:  # the next command alone may go to the slot being imported
                again[master].append(_ASKING)
            again[master].append(pack("SPUBLISH", *share[index]))
        for master, commands in again.items():
            # ASKING's own answer is OK; a refused SPUBLISH after a redirect is refused.
            refused += len(await self._master(master).refused(commands))
        return refused, bool(again)

    # -- routing: one link per master, by our own slot map

    async def _refresh_routes(self) -> None:
        if self._topology_read:
            await self._topology.aclose()  # forget the slot map, read it again
        await self._topology.initialize()
        self._topology_read = True

    def _route(self, channel: str) -> str:
        node = self._topology.get_node_from_key(channel)
        if node is None:
            raise RedisClusterException(f"no master serves {channel!r}")
        return node.name

    def _link_keys(self) -> Collection[str]:
        return [node.name for node in self._topology.get_primaries()]

    def _subscriber_client(self, key: str) -> aioredis.Redis:
        node = self._topology.get_node(node_name=key)
        if node is None:
            raise RedisClusterException(f"{key} is no longer in the cluster")
        return aioredis.Redis(
            host=node.host,
            port=int(node.port),
            socket_timeout=None,  # blocking reader; liveness by PING (see redis_base)
            socket_connect_timeout=5.0,
            socket_keepalive=True,
            retry=no_retry(),
            **self._url.options(),
        )
