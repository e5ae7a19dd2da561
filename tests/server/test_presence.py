"""Presence, for every adapter; and a dead node's users falling offline by themselves."""

from __future__ import annotations

import asyncio

import pytest

from harness import ServerUnderTest, connected, practitioner
from server.metrics import METRICS
from server.presence import open_presence
from server.presence.redis import RedisPresence
from services import RedisServer


@pytest.fixture(params=["memory", "redis", "redis-cluster"])
def presence_url(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return "memory://"
    url: str = request.getfixturevalue(
        "redis_cluster_url" if request.param == "redis-cluster" else "redis_url"
    )
    return url


@pytest.fixture(params=["redis", "redis-cluster"])
def shared_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue(
        "redis_cluster_url" if request.param == "redis-cluster" else "redis_url"
    )
    return url


async def test_connection_counts(presence_url: str) -> None:
    presence = open_presence(presence_url)
    await presence.start()
    try:
        await presence.connected("alice")
        await presence.connected("alice")
        await presence.connected("bob")
        assert await presence.online(["alice", "bob", "carol"]) == {"alice", "bob"}
        await presence.disconnected("alice")
        assert await presence.online(["alice"]) == {"alice"}  # one connection left
        await presence.disconnected("alice")
        await presence.disconnected("bob")
        assert await presence.online(["alice", "bob"]) == set()
    finally:
        await presence.close()


async def test_online_spans_many_users_and_nodes(shared_url: str) -> None:
    # Many users, many nodes: on a cluster their keys land in different slots, which a
    # multi-key command (MGET) would be refused for.
    nodes = [open_presence(shared_url) for _ in range(3)]
    for node in nodes:
        await node.start()
    try:
        users = [f"user-{i}" for i in range(60)]
        for i, user in enumerate(users):
            await nodes[i % 3].connected(user)
        assert await nodes[0].online([*users, "nobody"]) == set(users)
        for i, user in enumerate(users[:30]):
            await nodes[i % 3].disconnected(user)
        assert await nodes[1].online(users) == set(users[30:])
    finally:
        for node in nodes:
            await node.close()


async def test_users_of_a_dead_node_fall_offline(shared_url: str) -> None:
    dying = RedisPresence(shared_url, ttl_s=1)
    observer = RedisPresence(shared_url)
    await dying.start()
    await observer.start()
    try:
        await dying.connected("dana")
        assert await observer.online(["dana"]) == {"dana"}
        assert dying._heartbeat is not None
        dying._heartbeat.cancel()  # the node stops beating, as if killed
        # Redis expires the heartbeat key within about a second: poll for it.
        for _ in range(100):
            if not await observer.online(["dana"]):
                break
            await asyncio.sleep(0.1)
        assert await observer.online(["dana"]) == set()
    finally:
        await observer.close()


async def test_room_members_show_who_is_online(server: ServerUnderTest) -> None:
    a = await connected(await practitioner(server.url, server.store))
    offline = await practitioner(server.url, server.store)
    try:
        room = await a.create_room("group", [offline.user_id])
        online = {m.user: m.online for m in room.members or ()}
        assert online == {a.user_id: True, offline.user_id: False}
    finally:
        await a.close()


async def test_a_burst_of_connections_is_all_recorded(redis_url: str) -> None:
    """2,050 users connecting at once on one node (more than the Redis client's pool
    of 100 connections): every one of them is online, none lost to "Too many
    connections"."""
    presence = RedisPresence(redis_url)
    await presence.start()
    errors = METRICS.presence_errors.get()
    users = [f"burst-{i}" for i in range(2050)]
    try:
        await asyncio.gather(*(presence.connected(user) for user in users))
        assert await presence.online(users) == set(users)
        reads = await asyncio.gather(*(presence.online([user]) for user in users[:500]))
        assert all(read == {user} for read, user in zip(reads, users[:500], strict=True))
        await asyncio.gather(*(presence.disconnected(user) for user in users))
        assert await presence.online(users) == set()
        assert METRICS.presence_errors.get() == errors
    finally:
        await presence.close()


async def test_presence_failures_are_counted_not_raised(own_redis: RedisServer) -> None:
    presence = RedisPresence(own_redis.url)
    await presence.start()
    errors = METRICS.presence_errors.get()
    try:
        own_redis.stop()
        await presence.connected("alice")  # best effort: no exception
        assert METRICS.presence_errors.get() == errors + 1
    finally:
        await presence.close()
