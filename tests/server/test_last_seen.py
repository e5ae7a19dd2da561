"""A device's "last seen" is recorded by its hellos, batched (server.last_seen), on both
storage adapters."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from harness import ServerUnderTest, connected, practitioner, server_on
from server.clock import now_ms


@pytest.fixture(params=["sqlite", "postgres"])
async def any_server(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[ServerUnderTest]:
    async with server_on(request.param, request, tmp_path) as srv:
        yield srv


async def test_every_hello_records_its_device_as_seen(any_server: ServerUnderTest) -> None:
    server = any_server
    accounts = [await practitioner(server.url, server.store) for _ in range(12)]
    unverified = await practitioner(server.url, server.store, verified=False)
    before = now_ms()
    clients = await asyncio.gather(*(connected(a) for a in [*accounts, unverified]))
    try:
        await server.services.last_seen.flush()
        for account in [*accounts, unverified]:
            device = await server.store.device(account.device_id)
            assert device is not None and device.last_seen_at is not None
            assert device.last_seen_at >= before
        # A later hello moves it on.
        await clients[0].close()
        await server.store.touch_devices({accounts[0].device_id: 1})
        clients[0] = await connected(accounts[0])
        await server.services.last_seen.flush()
        again = await server.store.device(accounts[0].device_id)
        assert again is not None and again.last_seen_at is not None
        assert again.last_seen_at >= before
    finally:
        for client in clients:
            await client.close()
