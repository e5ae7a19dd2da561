"""The broker contract (server/broker/base.py docstring), for every adapter."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Callable
from typing import Any

import hiredis
import pytest
import redis.asyncio as aioredis

from server.broker import Broker, open_broker
from server.broker.redis import RedisBroker
from server.broker.redis_cluster import (
    ClusterURL,
    RedisClusterBroker,
    _redirection,
    cluster_client,
)
from services import RedisCluster, RedisServer


class Inbox:
    """Collects publications; ``wait_for`` returns once a given one has arrived."""

    def __init__(self) -> None:
        self.items: list[tuple[str, bytes]] = []
        self.resets = 0
        self._arrived = asyncio.Event()
        self._reset = asyncio.Event()

    def on_message(self, channel: str, data: bytes) -> None:
        self.items.append((channel, data))
        self._arrived.set()

    def on_reset(self) -> None:
        self.resets += 1
        self._reset.set()

    async def wait_for(self, item: tuple[str, bytes]) -> None:
        async with asyncio.timeout(10):
            while item not in self.items:
                self._arrived.clear()
                await self._arrived.wait()

    async def wait_reset(self) -> None:
        await asyncio.wait_for(self._reset.wait(), 30)


def _redis_url(request: pytest.FixtureRequest, kind: str) -> str:
    url: str = request.getfixturevalue(
        "redis_cluster_url" if kind == "redis-cluster" else "redis_url"
    )
    return url


@pytest.fixture(params=["memory", "redis", "redis-cluster"])
def broker_url(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return "memory://"
    return _redis_url(request, request.param)


@pytest.fixture(params=["redis", "redis-cluster"])
def shared_url(request: pytest.FixtureRequest) -> str:
    """A broker that several nodes can share."""
    return _redis_url(request, request.param)


@pytest.fixture
async def started(broker_url: str) -> AsyncIterator[Callable[[], Any]]:
    brokers: list[Broker] = []

    async def start() -> tuple[Broker, Inbox]:
        broker, inbox = open_broker(broker_url), Inbox()
        await broker.start(inbox.on_message, inbox.on_reset)
        brokers.append(broker)
        return broker, inbox

    yield start
    for broker in brokers:
        await broker.close()


async def test_subscribed_channel_gets_every_publication_in_order(started: Any) -> None:
    broker, inbox = await started()
    await broker.subscribe("r:1")
    sent = [("r:1", i.to_bytes(4, "big")) for i in range(2000)]
    for channel, data in sent:
        await broker.publish(channel, data)
    await inbox.wait_for(sent[-1])
    assert inbox.items == sent


async def test_only_subscribed_channels_are_received(started: Any) -> None:
    broker, inbox = await started()
    await broker.subscribe("r:yes")
    await broker.subscribe("r:dropped")
    await broker.unsubscribe("r:dropped")
    await broker.publish("r:no", b"x")
    await broker.publish("r:dropped", b"y")
    await broker.publish("r:yes", b"marker")  # same publisher: ordered after the others
    await inbox.wait_for(("r:yes", b"marker"))
    assert inbox.items == [("r:yes", b"marker")]
    await broker.ping()


async def test_publications_cross_nodes(shared_url: str) -> None:
    a, b = open_broker(shared_url), open_broker(shared_url)
    inbox_a, inbox_b = Inbox(), Inbox()
    await a.start(inbox_a.on_message, inbox_a.on_reset)
    await b.start(inbox_b.on_message, inbox_b.on_reset)
    try:
        await b.subscribe("u:42")
        await a.subscribe("u:42")
        await a.publish("u:42", b"from a")
        await inbox_b.wait_for(("u:42", b"from a"))
        await inbox_a.wait_for(("u:42", b"from a"))  # a node hears its own publications
    finally:
        await a.close()
        await b.close()


async def _kill_subscribers(url: str, channel: str) -> int:
    """CLIENT KILL TYPE pubsub on the server carrying ``channel`` (on a cluster, its
    master only), as Redis does to a subscriber that falls behind
    (client-output-buffer-limit pubsub); returns how many were killed."""
    if url.startswith("redis+cluster://"):
        client = cluster_client(url)
        try:
            await client.initialize()
            killed = await client.execute_command(
                "CLIENT", "KILL", "TYPE", "pubsub", target_nodes=client.get_node_from_key(channel)
            )
        finally:
            await client.aclose()
        return int(killed)
    plain = aioredis.Redis.from_url(url)
    try:
        return int(await plain.execute_command("CLIENT", "KILL", "TYPE", "pubsub"))
    finally:
        await plain.aclose()


async def test_subscriber_dropped_by_redis_resubscribes_and_signals_a_reset(
    shared_url: str,
) -> None:
    broker, inbox = open_broker(shared_url), Inbox()
    await broker.start(inbox.on_message, inbox.on_reset)
    try:
        channels = [f"u:{i}" for i in range(20)]
        for channel in channels:
            await broker.subscribe(channel)
        for channel in channels:
            await broker.publish(channel, b"before")
        await inbox.wait_for((channels[-1], b"before"))
        assert await _kill_subscribers(shared_url, channels[0]) >= 1
        await inbox.wait_reset()
        for channel in channels:
            await broker.publish(channel, b"after")
        for channel in channels:
            await inbox.wait_for((channel, b"after"))
        assert inbox.resets == 1
    finally:
        await broker.close()


async def test_subscribe_returns_once_redis_has_processed_it(own_redis: RedisServer) -> None:
    # Written is not enough: a publication Redis handles before the SUBSCRIBE is lost
    # to the subscriber, and a hello reads its rooms' positions once subscribed.
    broker, inbox = RedisBroker(own_redis.url), Inbox()
    await broker.start(inbox.on_message, inbox.on_reset)
    assert own_redis.proc is not None
    try:
        own_redis.proc.send_signal(signal.SIGSTOP)  # Redis reads nothing for a while
        try:
            subscribed = asyncio.create_task(broker.subscribe("r:late"))
            done, _ = await asyncio.wait({subscribed}, timeout=0.3)
            assert not done
        finally:
            own_redis.proc.send_signal(signal.SIGCONT)
        await subscribed
        await broker.publish("r:late", b"first")
        await inbox.wait_for(("r:late", b"first"))
    finally:
        await broker.close()


async def test_unresponsive_redis_is_detected_and_recovered(own_redis: RedisServer) -> None:
    # A server that keeps the connection open but never answers (here: SIGSTOP; a
    # vanished peer or a hung process alike) is found out by the idle PING.
    broker, inbox = RedisBroker(own_redis.url, idle_ping_s=0.2), Inbox()
    await broker.start(inbox.on_message, inbox.on_reset)
    assert own_redis.proc is not None
    try:
        await broker.subscribe("r:1")
        await broker.publish("r:1", b"before")
        await inbox.wait_for(("r:1", b"before"))
        own_redis.proc.send_signal(signal.SIGSTOP)
        try:
            for _ in range(500):  # polls for up to 10 s
                if broker.losses:
                    break
                await asyncio.sleep(0.02)
            assert broker.losses == 1
            assert inbox.resets == 0  # not back yet
        finally:
            own_redis.proc.send_signal(signal.SIGCONT)
        await inbox.wait_reset()
        await broker.publish("r:1", b"after")
        await inbox.wait_for(("r:1", b"after"))
        assert inbox.resets == 1
    finally:
        await broker.close()


async def test_redis_restart_resubscribes_and_signals_a_reset(own_redis: RedisServer) -> None:
    broker, inbox = open_broker(own_redis.url), Inbox()
    await broker.start(inbox.on_message, inbox.on_reset)
    try:
        await broker.subscribe("r:1")
        await broker.publish("r:1", b"before")
        await inbox.wait_for(("r:1", b"before"))
        own_redis.stop()
        await broker.publish("r:1", b"while down")  # accepted, then dropped: at most once
        await broker.subscribe("r:2")  # subscribed while down: applied on reconnect
        own_redis.start()
        await inbox.wait_reset()
        await broker.publish("r:2", b"after")
        await inbox.wait_for(("r:2", b"after"))
        assert inbox.resets == 1
    finally:
        await broker.close()


async def _masters_of(url: str, channels: list[str]) -> tuple[set[str], int]:
    """The masters serving ``channels``, and how many masters the cluster has."""
    client = cluster_client(url)
    try:
        await client.initialize()
        nodes = [client.get_node_from_key(channel) for channel in channels]
        return {node.name for node in nodes if node is not None}, len(client.get_primaries())
    finally:
        await client.aclose()


async def test_channels_on_every_shard_are_received(redis_cluster_url: str) -> None:
    channels = [f"r:room-{i}" for i in range(50)]
    used, masters = await _masters_of(redis_cluster_url, channels)
    assert masters >= 2 and len(used) == masters  # the test spans every shard
    publisher, listener = open_broker(redis_cluster_url), open_broker(redis_cluster_url)
    quiet, inbox = Inbox(), Inbox()
    await publisher.start(quiet.on_message, quiet.on_reset)
    await listener.start(inbox.on_message, inbox.on_reset)
    try:
        for channel in channels:
            await listener.subscribe(channel)
        await listener.unsubscribe(channels[-1])
        sent = [(c, f"{c}/{n}".encode()) for n in range(20) for c in channels]  # interleaved
        for channel, data in sent:
            await publisher.publish(channel, data)
        await publisher.publish("r:not-subscribed", b"x")
        for channel in channels[:-1]:
            await inbox.wait_for((channel, f"{channel}/19".encode()))
        for channel in channels[:-1]:  # every one complete and in order
            got = [data for c, data in inbox.items if c == channel]
            assert got == [f"{channel}/{n}".encode() for n in range(20)]
        # Nothing else: neither the channel left nor the one never subscribed to.
        assert {c for c, _ in inbox.items} == set(channels[:-1])
        assert len(inbox.items) == 49 * 20
        assert inbox.resets == 0
    finally:
        await publisher.close()
        await listener.close()


async def _dropped_at_least(broker: RedisClusterBroker, count: int) -> None:
    for _ in range(500):  # polls for up to 10 s
        if broker.dropped >= count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{broker.dropped} publications dropped, expected {count}")


async def test_master_restart_resubscribes_and_signals_a_reset(
    own_redis_cluster: RedisCluster,
) -> None:
    cluster = own_redis_cluster
    channels = [f"r:{i}" for i in range(30)]
    owners = {channel: cluster.node_for_channel(channel) for channel in channels}
    victim = channels[0]
    down = owners[victim]
    survivor = next(c for c in channels if owners[c] != down)
    later = next(c for c in channels[1:] if owners[c] == down)  # subscribed while down
    broker, inbox = open_broker(cluster.url), Inbox()
    assert isinstance(broker, RedisClusterBroker)
    await broker.start(inbox.on_message, inbox.on_reset)
    try:
        await broker.subscribe(victim)
        await broker.subscribe(survivor)
        await broker.publish(victim, b"before")
        await broker.publish(survivor, b"before")
        await inbox.wait_for((victim, b"before"))
        await inbox.wait_for((survivor, b"before"))

        cluster.stop_node(down)
        await broker.publish(victim, b"while down")  # accepted, then dropped: at most once
        await broker.publish(survivor, b"while down")
        await broker.subscribe(later)  # its master is down: applied when it is back
        # The other masters keep carrying their channels meanwhile.
        await inbox.wait_for((survivor, b"while down"))
        await _dropped_at_least(broker, 1)
        assert inbox.resets == 0

        cluster.start_node(down)
        await inbox.wait_reset()
        await broker.publish(later, b"after")
        await broker.publish(victim, b"after")
        await inbox.wait_for((later, b"after"))
        await inbox.wait_for((victim, b"after"))
        assert (victim, b"while down") not in inbox.items
        assert inbox.resets == 1
        assert broker.dropped == 1  # only what went to the master that was down
    finally:
        await broker.close()


async def test_slot_moved_to_another_master_resubscribes_there(
    own_redis_cluster: RedisCluster,
) -> None:
    # Resharding: Redis unsubscribes the node from the channels of a slot its master
    # gives away; the broker must follow the slot to its new master.
    cluster = own_redis_cluster
    channels = [f"r:{i}" for i in range(30)]
    owners = {channel: cluster.node_for_channel(channel) for channel in channels}
    moving = channels[0]
    source = owners[moving]
    target = (source + 1) % len(cluster.ports)
    staying = next(c for c in channels[1:] if owners[c] == source)  # same link, other slot
    broker, inbox = open_broker(cluster.url), Inbox()
    await broker.start(inbox.on_message, inbox.on_reset)
    try:
        for channel in (moving, staying):
            await broker.subscribe(channel)
            await broker.publish(channel, b"before")
            await inbox.wait_for((channel, b"before"))

        cluster.move_slot_of(moving, target)
        await inbox.wait_reset()
        for channel in (moving, staying):  # the publisher follows MOVED on its side
            await broker.publish(channel, b"after")
        for channel in (moving, staying):
            await inbox.wait_for((channel, b"after"))
        assert inbox.resets == 1
        assert cluster.node_for_channel(moving) == target
    finally:
        await broker.close()


async def test_publications_answered_moved_follow_their_slot_in_order(
    own_redis_cluster: RedisCluster,
) -> None:
    # The publishing node has not heard of the move (it subscribes to nothing): its
    # whole batch is answered MOVED by the old owner and must reach the new one, in
    # order, once each; later batches go to the new owner directly.
    cluster = own_redis_cluster
    channels = [f"r:{i}" for i in range(30)]
    moving = channels[0]
    source = cluster.node_for_channel(moving)
    staying = next(c for c in channels[1:] if cluster.node_for_channel(c) == source)
    publisher, listener = open_broker(cluster.url), open_broker(cluster.url)
    inbox = Inbox()
    await publisher.start(Inbox().on_message, Inbox().on_reset)
    try:
        await publisher.publish(moving, b"before")  # the publisher has read the slot map
        cluster.move_slot_of(moving, (source + 1) % len(cluster.ports))
        await listener.start(inbox.on_message, inbox.on_reset)  # reads the new map
        await listener.subscribe(moving)
        await listener.subscribe(staying)
        batch = [(moving, f"{i}".encode()) for i in range(50)] + [(staying, b"stays")]
        await publisher.publish_many(batch)
        await publisher.publish(moving, b"then")
        await inbox.wait_for((moving, b"then"))
        await inbox.wait_for((staying, b"stays"))
        got = [data for channel, data in inbox.items if channel == moving]
        assert got == [f"{i}".encode() for i in range(50)] + [b"then"]
        assert isinstance(publisher, RedisClusterBroker)
        assert publisher.dropped == 0
    finally:
        await publisher.close()
        await listener.close()


def test_cluster_redirections_are_read_from_the_error() -> None:
    sent_to = "10.0.0.1:7000"
    moved = hiredis.ReplyError("MOVED 3999 10.0.0.2:7001")
    assert _redirection(moved, sent_to) == ("10.0.0.2:7001", False)
    assert _redirection(hiredis.ReplyError("ASK 3999 10.0.0.3:7002"), sent_to) == (
        "10.0.0.3:7002",
        True,
    )
    # Redis 7 names no host when it knows none: the one asked.
    assert _redirection(hiredis.ReplyError("MOVED 3999 :7003"), sent_to) == ("10.0.0.1:7003", False)
    assert _redirection(hiredis.ReplyError("CLUSTERDOWN The cluster is down"), sent_to) is None


def test_cluster_urls() -> None:
    parsed = ClusterURL.parse("redis+cluster://10.0.0.1:7000,10.0.0.2,[::1]:7002")
    assert parsed == ClusterURL(nodes=(("10.0.0.1", 7000), ("10.0.0.2", 6379), ("::1", 7002)))
    secure = ClusterURL.parse("rediss+cluster://app:s%40cret@redis.internal:6380/0")
    assert secure == ClusterURL(
        nodes=(("redis.internal", 6380),), username="app", password="s@cret", ssl=True
    )
    for bad in (
        "redis://h:1",
        "redis+cluster://",
        "redis+cluster://h:1/3",
        "redis+cluster://h?x=1",
    ):
        with pytest.raises(ValueError):
            ClusterURL.parse(bad)
