"""Several nodes on one Redis (or one Redis Cluster, sharded pub/sub) and one PostgreSQL:
conversations across nodes, membership changes crossing nodes, and no acked message
lost when a node, Redis or a Redis Cluster master dies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from clients.python import Account, Client, ServerError
from harness import (
    SERVER_KEY,
    connected,
    messages_from_others,
    next_of,
    opened,
    practitioner,
    sealed,
)
from loadtest.server_process import ServerProcess
from protocol.errors import ErrorCode
from protocol.frames import Event, Msg, ReadMarker
from services import RedisCluster, RedisServer
from storage import Store, open_store


class Cluster:
    """Two nodes sharing a broker and a database, plus a store handle for admin steps."""

    def __init__(self, nodes: list[ServerProcess], store: Store) -> None:
        self.nodes = nodes
        self.store = store

    @property
    def urls(self) -> list[str]:
        return [n.url for n in self.nodes]

    async def account(self, node: int) -> Account:
        return await practitioner(self.nodes[node].url, self.store)


async def start_cluster(database_url: str, broker_url: str, count: int = 2) -> Cluster:
    env = {
        "CONFRERE_DATABASE_URL": database_url,
        "CONFRERE_BROKER_URL": broker_url,
        "CONFRERE_PASSWORD_COST": "min",
        "CONFRERE_LOG_LEVEL": "warning",
        "CONFRERE_SERVER_KEY": SERVER_KEY,
    }
    nodes = [ServerProcess(env) for _ in range(count)]
    for node in nodes:
        node.spawn()
    for node in nodes:
        await node.wait_ready()
    return Cluster(nodes, await open_store(database_url))


async def stop_cluster(cluster: Cluster) -> None:
    await cluster.store.close()
    for node in cluster.nodes:
        node.close()


@pytest.fixture(params=["redis", "redis-cluster"])
async def cluster(postgres_database: str, request: pytest.FixtureRequest) -> AsyncIterator[Cluster]:
    broker_url: str = request.getfixturevalue(
        "redis_cluster_url" if request.param == "redis-cluster" else "redis_url"
    )
    started = await start_cluster(postgres_database, broker_url)
    try:
        yield started
    finally:
        await stop_cluster(started)


@pytest.mark.parametrize("kind", ["direct", "group", "patient_case"])
async def test_clients_on_different_nodes_converse(cluster: Cluster, kind: str) -> None:
    a = await connected(await cluster.account(0))
    b = await connected(await cluster.account(1))
    try:
        room = await a.create_room(kind, [b.user_id])
        for i in range(10):
            await a.send(room.id, sealed(f"a{i}".encode()))
            await b.send(room.id, sealed(f"b{i}".encode()))
        from_a = await messages_from_others(b, room.id, 10)
        from_b = await messages_from_others(a, room.id, 10)
        assert [opened(m.body) for m in from_a] == [f"a{i}".encode() for i in range(10)]
        assert [opened(m.body) for m in from_b] == [f"b{i}".encode() for i in range(10)]
    finally:
        await a.close()
        await b.close()


async def test_a_receipt_crosses_nodes(cluster: Cluster) -> None:
    """Each node tells the room of the markers its own reads raised: a reader on node 1
    is heard on node 0 (one ``receipts`` event), the reader's device too."""
    a = await connected(await cluster.account(0))
    b = await connected(await cluster.account(1))
    try:
        room = await a.create_room("group", [b.user_id])
        seq = await a.send(room.id, sealed(b"lu ?"))
        assert await b.read(room.id, seq) == seq
        for client in (a, b):
            told = await next_of(client, Event, kind="receipts", room=room.id)
            assert isinstance(told, Event) and told.reads == (ReadMarker(b.user_id, seq),)
    finally:
        await a.close()
        await b.close()


async def test_membership_changes_cross_nodes(cluster: Cluster) -> None:
    owner = await connected(await cluster.account(0))
    c = await connected(await cluster.account(1))
    try:
        room = await owner.create_room("group", [])
        await owner.invite(room.id, [c.user_id])  # on node 0; c is on node 1
        await next_of(c, Event, kind="member.joined", users=(c.user_id,))
        await owner.send(room.id, sealed(b"welcome"))
        assert [opened(m.body) for m in await messages_from_others(c, room.id, 1)] == [b"welcome"]
        assert await c.send(room.id, sealed(b"thanks")) > 0

        await owner.remove(room.id, c.user_id)
        await next_of(c, Event, kind="member.left", user=c.user_id)
        with pytest.raises(ServerError) as info:
            await c.send(room.id, sealed(b"still there?"))  # refused on node 1 from its memory
        assert info.value.code == ErrorCode.FORBIDDEN
    finally:
        await owner.close()
        await c.close()


class Acks(list[int]):
    """Seqs acked so far; ``reach(n)`` waits until there are ``n`` of them."""

    def __init__(self) -> None:
        super().__init__()
        self._grew = asyncio.Event()

    def add(self, seq: int) -> None:
        self.append(seq)
        self._grew.set()

    async def reach(self, count: int) -> None:
        async with asyncio.timeout(30):
            while len(self) < count:
                self._grew.clear()
                await self._grew.wait()


async def _stream(client: Client, room: str, acks: Acks, count: int) -> None:
    for i in range(count):
        acks.add(await client.send(room, sealed(f"{client.device_id}:{i}".encode()), cid=f"c{i}"))


def assert_exactly_once(received: list[Msg], expected_seqs: set[int]) -> None:
    seqs = [m.seq for m in received]
    assert len(seqs) == len(set(seqs)), "duplicate delivery"
    assert set(seqs) == expected_seqs, f"lost: {sorted(expected_seqs - set(seqs))[:10]}"
    assert seqs == sorted(seqs), "out of order"


async def test_node_killed_mid_stream_loses_nothing(cluster: Cluster) -> None:
    # a stays on node 0; b and c start on node 1, which dies, and fail over to node 0.
    a = await connected(await cluster.account(0), endpoints=cluster.urls)
    b = await connected(await cluster.account(1), endpoints=cluster.urls[::-1])
    c = await connected(await cluster.account(1), endpoints=cluster.urls[::-1])
    try:
        room = await a.create_room("group", [b.user_id, c.user_id])
        acks = {a.user_id: Acks(), b.user_id: Acks()}
        senders = [
            asyncio.create_task(_stream(a, room.id, acks[a.user_id], 150)),
            asyncio.create_task(_stream(b, room.id, acks[b.user_id], 150)),
        ]
        await acks[b.user_id].reach(50)
        cluster.nodes[1].kill()
        await asyncio.gather(*senders)
        assert b.reconnects >= 1  # b's sends could only finish through node 0

        everyone = set(acks[a.user_id]) | set(acks[b.user_id])
        # c only listens: it notices the dead node whenever its connection says so,
        # which may be after the senders are done; all of them reach it through node 0.
        assert_exactly_once(await messages_from_others(c, room.id, 300), everyone)
        assert c.reconnects >= 1
        assert_exactly_once(await messages_from_others(a, room.id, 150), set(acks[b.user_id]))
        assert_exactly_once(await messages_from_others(b, room.id, 150), set(acks[a.user_id]))
    finally:
        for client in (a, b, c):
            await client.close()


async def test_redis_restart_mid_stream_loses_nothing(postgres_database: str) -> None:
    redis_server = RedisServer().start()
    cluster = await start_cluster(postgres_database, redis_server.url)
    try:
        a = await connected(await cluster.account(0))
        b = await connected(await cluster.account(1))
        room = await a.create_room("direct", [b.user_id])
        acks = Acks()
        sender = asyncio.create_task(_stream(a, room.id, acks, 200))
        await acks.reach(50)
        redis_server.stop()
        await acks.reach(len(acks) + 20)  # still acked while Redis is down
        redis_server.start()
        await sender
        assert_exactly_once(await messages_from_others(b, room.id, 200), set(acks))
        await a.close()
        await b.close()
    finally:
        await stop_cluster(cluster)
        redis_server.close()


async def test_redis_cluster_master_restart_mid_stream_loses_nothing(
    postgres_database: str, own_redis_cluster: RedisCluster
) -> None:
    redis_cluster = own_redis_cluster
    cluster = await start_cluster(postgres_database, redis_cluster.url)
    try:
        a = await connected(await cluster.account(0))
        b = await connected(await cluster.account(1))
        room = await a.create_room("direct", [b.user_id])
        down = redis_cluster.node_for_channel(f"r:{room.id}")  # the room's master
        acks = Acks()
        sender = asyncio.create_task(_stream(a, room.id, acks, 200))
        await acks.reach(50)
        redis_cluster.stop_node(down)
        await acks.reach(len(acks) + 20)  # still acked while the room's master is down
        redis_cluster.start_node(down)
        await sender
        assert_exactly_once(await messages_from_others(b, room.id, 200), set(acks))
        await a.close()
        await b.close()
    finally:
        await stop_cluster(cluster)
