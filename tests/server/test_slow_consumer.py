"""Slow consumers: a member that stops reading is closed with 4008 once its bounded
send queue overflows, catches up by sync when it comes back, and never delays the
other members. The test prints the healthy members' delivery latency with one stalled
member and with none (figures, not a timing assertion)."""

from __future__ import annotations

import asyncio
import socket
import statistics
import time
from pathlib import Path

import websockets
from raw_ws import Raw, closed_with, ws_url

from clients.python import Client
from harness import connected, practitioner, running_server, sealed, settings_for
from protocol import SUBPROTOCOL, CloseCode
from protocol.frames import Hello, Msg

MESSAGES = 400
BODY = sealed(b"\x00" * (16 * 1024 - 125))  # 16 KiB of ciphertext: 6.4 MB per recipient per phase
QUEUE = 64  # frames queued per connection before close 4008
IN_FLIGHT = 8


async def collect(client: Client, room: str, count: int, arrived: dict[str, float]) -> None:
    while len(arrived) < count:
        item = await client.recv()
        if isinstance(item, Msg) and item.room == room:
            arrived[item.cid] = time.perf_counter()


async def phase(
    sender: Client, members: list[Client], room: str, tag: str
) -> tuple[list[float], list[float]]:
    """Send ``MESSAGES`` (``IN_FLIGHT`` at a time); return each delivery's latency (s)
    from the send call to its arrival at each healthy member (commit included), and
    each message's spread: last arrival minus first among the healthy members (fan-out
    alone: a member held up by another would show here)."""
    sent: dict[str, float] = {}
    arrivals: list[dict[str, float]] = [{} for _ in members]
    readers = [
        asyncio.create_task(collect(m, room, MESSAGES, arrived))
        for m, arrived in zip(members, arrivals, strict=True)
    ]
    window = asyncio.Semaphore(IN_FLIGHT)

    async def send_one(i: int) -> None:
        async with window:
            cid = f"{tag}-{i}"
            sent[cid] = time.perf_counter()
            await sender.send(room, BODY, cid=cid)

    async with asyncio.timeout(120):
        await asyncio.gather(*(send_one(i) for i in range(MESSAGES)))
        await asyncio.gather(*readers)
    latencies = [arrived[cid] - sent[cid] for arrived in arrivals for cid in sent]
    spreads = [max(a[cid] for a in arrivals) - min(a[cid] for a in arrivals) for cid in sent]
    return latencies, spreads


def summary(latencies: list[float]) -> str:
    ordered = sorted(latencies)
    p99 = ordered[int(len(ordered) * 0.99) - 1]
    return (
        f"p50 {statistics.median(ordered) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, "
        f"max {ordered[-1] * 1000:.1f} ms over {len(ordered)} samples"
    )


async def test_one_stalled_member_never_delays_the_others(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, send_queue_frames=QUEUE)
    async with running_server(settings) as srv:
        alice, *healthy_accounts = [await practitioner(srv.url, srv.store) for _ in range(4)]
        eve = await practitioner(srv.url, srv.store)
        sender = await connected(alice)
        members = [await connected(a) for a in healthy_accounts]
        try:
            ids = [a.user_id for a in (*healthy_accounts, eve)]
            room = (await sender.create_room("group", ids)).id

            calm, calm_spread = await phase(sender, members, room, "calm")

            # Eve connects, then stops reading: a tiny receive buffer and a client-side
            # queue of one frame, so the server's writes back up at once.
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            host, port = srv.url.removeprefix("http://").split(":")
            sock.connect((host, int(port)))
            async with websockets.connect(
                ws_url(srv.url),
                sock=sock,
                subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
                max_queue=1,
                max_size=2**24,
            ) as ws:
                stalled = Raw(ws)
                await stalled.send(Hello(1, eve.token, eve.device_id))
                await stalled.reply_to(1)
                stormy, stormy_spread = await phase(sender, members, room, "stalled")
                # Eve reads again: what was queued, then the close.
                assert await closed_with(stalled, 30) == CloseCode.SLOW_CONSUMER
        finally:
            await sender.close()
            for m in members:
                await m.close()

        print("\nsend -> delivery at the 3 healthy members (commit included):")
        print(f"  no stalled member:  {summary(calm)}")
        print(f"  one stalled member: {summary(stormy)}")
        print("spread of one message's arrivals across the healthy members (fan-out):")
        print(f"  no stalled member:  {summary(calm_spread)}")
        print(f"  one stalled member: {summary(stormy_spread)}")

        # Back, Eve catches up by sync: every message, once.
        again = await connected(eve)
        try:
            got: set[str] = set()
            async with asyncio.timeout(60):
                while len(got) < 2 * MESSAGES:
                    item = await again.recv()
                    if isinstance(item, Msg) and item.room == room:
                        assert item.cid not in got
                        got.add(item.cid)
        finally:
            await again.close()
