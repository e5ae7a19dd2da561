"""A device's "last seen" is recorded by its hellos, batched (server.last_seen), on both
storage adapters."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import pytest

from harness import ServerUnderTest, connected, practitioner, server_on
from server.clock import now_ms
from server.last_seen import LastSeen


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


class _SlowStore:
    """Records each transaction; the first waits until released."""

    def __init__(self) -> None:
        self.batches: list[dict[str, int]] = []
        self.release = asyncio.Event()
        self.fail_next = False

    async def touch_devices(self, seen: Mapping[str, int]) -> None:
        if not self.batches:
            await self.release.wait()
        self.batches.append(dict(seen))
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("database down")


async def test_hellos_during_a_write_share_the_next_one() -> None:
    store = _SlowStore()
    last_seen = LastSeen(store)
    last_seen.note("d1", 1)
    await asyncio.sleep(0)  # the first write starts, and waits
    for n in range(2, 50):
        last_seen.note(f"d{n % 10}", n)  # a device seen twice keeps its latest time
    store.release.set()
    await last_seen.flush()
    assert store.batches[0] == {"d1": 1}
    assert store.batches[1:] == [{f"d{k}": 40 + k for k in range(10)}]


async def test_a_failed_write_is_dropped_and_the_next_hellos_are_written() -> None:
    store = _SlowStore()
    store.release.set()
    store.fail_next = True
    last_seen = LastSeen(store)
    last_seen.note("d1", 1)
    await last_seen.flush()  # logged, not raised
    last_seen.note("d2", 2)
    await last_seen.flush()
    assert store.batches == [{"d1": 1}, {"d2": 2}]
