"""No acked message is lost: across a client's disconnection and a node's crash."""

from __future__ import annotations

import asyncio
from pathlib import Path

from clients.python import Client
from harness import (
    ServerUnderTest,
    connected,
    messages_from_others,
    opened,
    practitioner,
    sealed,
    server_process,
    settings_for,
)
from protocol import CloseCode
from protocol.crypto.envelope import wrap_header
from protocol.frames import Msg
from storage import open_store


async def test_client_killed_mid_conversation_gets_exactly_what_it_missed(
    server: ServerUnderTest,
) -> None:
    a = await connected(await practitioner(server.url, server.store))
    b = await connected(await practitioner(server.url, server.store))
    try:
        room = await a.create_room("group", [b.user_id])
        first = [await a.send(room.id, sealed(f"before {i}".encode())) for i in range(5)]
        assert [m.seq for m in await messages_from_others(b, room.id, 5)] == first

        b.drop_connection()  # as a dead network would
        missed = [await a.send(room.id, sealed(f"missed {i}".encode())) for i in range(20)]
        after = [await a.send(room.id, sealed(f"after {i}".encode())) for i in range(5)]

        got = await messages_from_others(b, room.id, 25)
        assert [m.seq for m in got] == missed + after  # in order, each once
        assert [opened(m.body) for m in got][:2] == [b"missed 0", b"missed 1"]
        assert b.reconnects >= 1
    finally:
        await a.close()
        await b.close()


async def test_sends_during_a_disconnection_are_stored_once(server: ServerUnderTest) -> None:
    a = await connected(await practitioner(server.url, server.store))
    b = await connected(await practitioner(server.url, server.store))
    try:
        room = await a.create_room("direct", [b.user_id])
        sends = [
            asyncio.create_task(a.send(room.id, sealed(f"m{i}".encode()), cid=f"c{i}"))
            for i in range(30)
        ]
        a.drop_connection()
        seqs = await asyncio.gather(*sends)
        assert len(set(seqs)) == 30
        got = await messages_from_others(b, room.id, 30)
        assert sorted(m.cid for m in got) == sorted(f"c{i}" for i in range(30))
        batch = await b.sync(room.id, 0, 500)
        assert len([i for i in batch.items if isinstance(i, Msg)]) == 30  # no duplicate
    finally:
        await a.close()
        await b.close()


async def test_node_crash_and_restart_loses_no_acked_message(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    node = server_process(settings)
    await node.start()
    try:
        store = await open_store(settings.database_url)
        try:
            a_account = await practitioner(node.url, store)
            b_account = await practitioner(node.url, store)
        finally:
            await store.close()
        a = await connected(a_account)
        b = await connected(b_account)
        room = await a.create_room("patient_case", [b.user_id])
        await a.update_room(room.id, header=wrap_header(a.device_id, sealed(b"h")))
        acks: asyncio.Queue[int] = asyncio.Queue()
        sender = asyncio.create_task(_send_forever(a, room.id, acks))
        acked = [await asyncio.wait_for(acks.get(), 30) for _ in range(50)]
        node.kill()  # SIGKILL mid-stream: whatever was acked must survive
        await node.start()
        acked += [await asyncio.wait_for(acks.get(), 60) for _ in range(50)]
        sender.cancel()
        got = await messages_from_others(b, room.id, len(acked))
        seqs = [m.seq for m in got]
        assert set(acked) <= set(seqs)
        assert seqs == sorted(set(seqs))  # in order, no duplicate
        await a.close()
        await b.close()
    finally:
        node.close()


async def _send_forever(client: Client, room: str, acks: asyncio.Queue[int]) -> None:
    i = 0
    while True:
        acks.put_nowait(await client.send(room, sealed(f"m{i}".encode())))
        i += 1


async def test_clients_of_a_closed_node_come_back_spread_out(server: ServerUnderTest) -> None:
    """Reconnection uses full jitter (SPEC.md §2.2): 30 clients dropped in the same
    instant do not all come back in the same instant."""
    accounts = [await practitioner(server.url, server.store) for _ in range(30)]
    clients = [await connected(account) for account in accounts]
    loop = asyncio.get_running_loop()
    try:
        for conn in server.app.live.all():
            conn.close(CloseCode.SERVICE_RESTART)  # every socket at once, as a dying node
        dropped_at = loop.time()
        back: dict[int, float] = {}
        async with asyncio.timeout(20):
            while len(back) < len(clients):
                for n, client in enumerate(clients):
                    if client.reconnects and n not in back:
                        back[n] = loop.time() - dropped_at
                await asyncio.sleep(0.002)
        times = sorted(back.values())
        # Uniform over the first window (0.25 s): 30 draws within 0.1 s of each other
        # has a probability below 1e-10; without jitter they all land within ~20 ms.
        assert times[-1] - times[0] > 0.1, times
    finally:
        for client in clients:
            await client.close()
