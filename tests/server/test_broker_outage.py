"""A Redis outage (a real redis-server stopped, then started again) between two nodes
on one PostgreSQL (SPEC.md §6, item 10): members on the same node keep talking live;
a member on the other node gets what was sent within the catch-up bound, from the
database, while Redis is still down; nothing acked is lost or duplicated; the nodes
do not log a traceback per second meanwhile; and when Redis is back the fan-out goes
through it again."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest

from harness import (
    connected,
    messages_from_others,
    practitioner,
    running_server,
    sealed,
    settings_for,
)
from protocol.frames import Msg
from server.catchup import CATCH_UP_S
from services import RedisServer


async def test_a_redis_outage_keeps_local_fan_out_and_bounds_the_gap(
    tmp_path: Path,
    postgres_database: str,
    own_redis: RedisServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = settings_for(tmp_path, database_url=postgres_database, broker_url=own_redis.url)
    async with running_server(settings) as a_node, running_server(settings) as b_node:
        alice = await practitioner(a_node.url, a_node.store)
        bob = await practitioner(a_node.url, a_node.store)
        carol = await practitioner(b_node.url, b_node.store)
        a, b = await connected(alice), await connected(bob)
        c = await connected(carol)  # on the other node
        try:
            room = await a.create_room("group", [bob.user_id, carol.user_id])
            before = await a.send(room.id, sealed(b"before"))
            assert [m.seq for m in await messages_from_others(c, room.id, 1)] == [before]
            assert [m.seq for m in await messages_from_others(b, room.id, 1)] == [before]

            caplog.set_level(logging.INFO)
            caplog.clear()
            own_redis.stop()
            outage = time.monotonic()
            during = [await a.send(room.id, sealed(f"during {i}".encode())) for i in range(3)]
            # Same node: live, as if nothing happened.
            got = await asyncio.wait_for(messages_from_others(b, room.id, 3), 1.0)
            assert [m.seq for m in got] == during
            # Other node: from the database, within the bound, Redis still down.
            got = await asyncio.wait_for(messages_from_others(c, room.id, 3), 3 * CATCH_UP_S)
            assert [m.seq for m in got] == during
            assert a_node.services.hub.broker.degraded
            await asyncio.sleep(max(0.0, outage + 4 - time.monotonic()))  # 4 s of outage
            tracebacks = [r for r in caplog.records if r.exc_info]
            assert not tracebacks, tracebacks[0].getMessage()
            warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
            assert len(warnings) < 20, [r.getMessage() for r in warnings]

            own_redis.start()
            after = await a.send(room.id, sealed(b"after"))
            got = await asyncio.wait_for(messages_from_others(c, room.id, 1), 30)
            assert [m.seq for m in got] == [after]
        finally:
            for client in (a, b, c):
                await client.close()
        # Everything carol's device was handed, once each and in order (the SDK drops
        # duplicates by seq: the timeline has each message once).
        batch = await b_node.store.timeline(room.id, 0, 100)
        sent = [i.seq for i in batch if i.kind == "msg"]
        assert sent == [before, *during, after]
        assert isinstance(got[0], Msg)
