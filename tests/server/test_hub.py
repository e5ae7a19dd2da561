"""The hub's bookkeeping, driven directly with stand-in connections and the in-process
broker (whose delivery is synchronous, so no waiting is involved)."""

from __future__ import annotations

import asyncio

from server.broker.memory import MemoryBroker
from server.hub import Hub
from server.presence.memory import MemoryPresence


class Peer:
    def __init__(self, user_id: str, device_id: str) -> None:
        self.user_id, self.device_id = user_id, device_id
        self.rooms: set[str] = set()
        self.got: list[bytes] = []

    def push(self, data: bytes) -> None:
        self.got.append(data)

    def resync(self) -> None:
        raise AssertionError("no reset expected")


async def settle(hub: Hub) -> None:
    """Let the subscription changes the hub scheduled from broker callbacks run."""
    while hub._tasks:
        await asyncio.gather(*hub._tasks)


async def test_a_room_reattached_before_its_unsubscribe_runs_stays_subscribed() -> None:
    hub = Hub(MemoryBroker(), MemoryPresence())
    await hub.start()
    a, b = Peer("ua", "da"), Peer("ub", "db")
    await hub.connect(a, ["R"])
    await hub.connect(b, [])
    await hub.publish_item("R", b"a leaves", 1, leave="ua")  # last local peer: unsubscribe
    await hub.attach(b, "R")  # ...scheduled, not yet run, when b attaches
    await settle(hub)
    await hub.publish_item("R", b"after", 2)
    assert b.got == [b"after"]
    assert "R" not in a.rooms and a.got == [b"a leaves"]


async def test_channels_follow_local_connections() -> None:
    broker = MemoryBroker()
    hub = Hub(broker, MemoryPresence())
    await hub.start()
    a = Peer("ua", "da")
    await hub.connect(a, ["R1", "R2"])
    assert broker._channels == {"u:ua", "r:R1", "r:R2"}
    await hub.disconnect(a)
    await settle(hub)
    assert broker._channels == set()


class Recording(MemoryBroker):
    """The in-process broker, recording what is published through it."""

    def __init__(self, shared: bool) -> None:
        super().__init__()
        self.shared = shared
        self.published: list[str] = []

    async def publish(self, channel: str, data: bytes) -> None:
        self.published.append(channel)
        await super().publish(channel, data)


async def test_on_a_broker_no_other_node_reads_a_hub_publishes_nothing() -> None:
    # The node's own publications would only come back as the echo it drops: local
    # connections get everything all the same, once.
    for shared, expected in ((False, []), (True, ["u:uc", "r:R", "r:R", "r:R", "u:ua"])):
        broker = Recording(shared)
        hub = Hub(broker, MemoryPresence())
        await hub.start()
        a, b, c = Peer("ua", "da"), Peer("ub", "db"), Peer("uc", "dc")
        await hub.connect(a, ["R"])
        await hub.connect(b, ["R"])
        await hub.connect(c, [])
        await hub.publish_item("R", b"c joins", 1, join=("uc",))
        await hub.publish_items([("R", b"one", 2, "da", False)])
        await hub.publish_ephemeral("R", b"typing", skip="db")
        await hub.publish_to_device("ua", "da", b"to a")
        assert a.got == [b"c joins", b"typing", b"to a"]
        assert b.got == [b"c joins", b"one"]
        assert c.got == [b"c joins", b"one", b"typing"]
        assert broker.published == expected
        assert hub.deliveries == 8
