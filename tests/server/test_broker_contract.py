"""The broker contract (server/broker/base.py docstring), for every adapter."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from server.broker import Broker, open_broker
from services import RedisServer


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


@pytest.fixture(params=["memory", "redis"])
def broker_url(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return "memory://"
    url: str = request.getfixturevalue("redis_url")
    return url


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


async def test_publications_cross_nodes(redis_url: str) -> None:
    a, b = open_broker(redis_url), open_broker(redis_url)
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
