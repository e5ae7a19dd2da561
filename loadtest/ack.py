"""``python -m loadtest ack``: send throughput and send -> ack latency on one node.

Starts its own node (embedded default: SQLite + in-process broker, in a temporary
directory, or the adapters named by ``CONFRERE_*`` in the environment), signs up
``--clients`` practitioners, puts them in groups of ``--room-size``, and has every
client send ``--messages`` / ``--clients`` messages back to back (one in flight per
client, as a person typing would). Every send is durably committed before its ack, so
this measures the group commit under concurrency. It also counts deliveries to the
other members and checks that each one arrived exactly once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from clients.python import Client
from protocol.frames import Msg

from .population import verified_accounts
from .server_process import ServerProcess
from .stats import percentiles

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--room-size", type=int, default=5)
    parser.add_argument("--messages", type=int, default=10_000, help="in total")
    parser.add_argument("--payload", type=int, default=500, help="bytes of ciphertext")
    parser.add_argument("--report", type=Path, help="write the figures as JSON here")


async def _population(url: str, database_url: str, count: int) -> list[Client]:
    accounts = await verified_accounts(url, database_url, count)
    clients = [Client(a) for a in accounts]  # fresh accounts: no history to replay
    await asyncio.gather(*(c.connect() for c in clients))
    return clients


class Deliveries:
    """Counts each (receiving device, room, seq) so that losses and duplicates show."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str, int], int] = {}
        self.total = 0
        self.expected = -1
        self.complete = asyncio.Event()

    async def consume(self, client: Client) -> None:
        async for item in client.events():
            if isinstance(item, Msg) and item.device != client.device_id:
                key = (client.device_id, item.room, item.seq)
                self.counts[key] = self.counts.get(key, 0) + 1
                self.total += 1
                if self.total == self.expected:
                    self.complete.set()

    def expect(self, expected: int) -> None:
        self.expected = expected
        if self.total >= expected:
            self.complete.set()

    @property
    def duplicates(self) -> int:
        return sum(n - 1 for n in self.counts.values() if n > 1)


async def _bench(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    database_url = os.environ.get("CONFRERE_DATABASE_URL", f"sqlite:///{workdir / 'bench.db'}")
    node = ServerProcess(
        {
            "CONFRERE_DATABASE_URL": database_url,
            "CONFRERE_PASSWORD_COST": "min",
            "CONFRERE_LOG_LEVEL": "warning",
            # One node: a key of its own is enough (a real deployment shares one).
            "CONFRERE_SERVER_KEY_FILE": str(workdir / "server.key"),
        }
    )
    await node.start()
    try:
        clients = await _population(node.url, database_url, args.clients)
        groups = [clients[i : i + args.room_size] for i in range(0, len(clients), args.room_size)]
        rooms: dict[int, str] = {}
        for group in groups:
            room = await group[0].create_room("group", [c.user_id for c in group[1:]])
            for client in group:
                rooms[id(client)] = room.id
        deliveries = Deliveries()
        readers = [asyncio.create_task(deliveries.consume(c)) for c in clients]
        per_client = max(1, args.messages // len(clients))
        latencies: list[float] = []
        payload = b"\x01" + os.urandom(max(args.payload, 125) - 1)  # a message's shape (§11.2)

        async def sender(client: Client) -> None:
            room = rooms[id(client)]
            for _ in range(per_client):
                start = time.perf_counter()
                await client.send(room, payload)
                latencies.append((time.perf_counter() - start) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(sender(c) for c in clients))
        elapsed = time.perf_counter() - started
        sent = per_client * len(clients)
        expected = sum(per_client * len(g) * (len(g) - 1) for g in groups)
        deliveries.expect(expected)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(deliveries.complete.wait(), 30)
        for task in readers:
            task.cancel()
        for client in clients:
            await client.close()
        return {
            "clients": len(clients),
            "room_size": args.room_size,
            "payload_bytes": args.payload,
            "sent": sent,
            "acked": len(latencies),
            "seconds": round(elapsed, 3),
            "messages_per_s": round(sent / elapsed, 1),
            "ack_latency_ms": percentiles(latencies),
            "expected_deliveries": expected,
            "delivered": deliveries.total,
            "duplicates": deliveries.duplicates,
        }
    finally:
        node.close()


def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="confrere-bench-") as workdir:
        report = asyncio.run(_bench(args, Path(workdir)))
    lat = report["ack_latency_ms"]
    print(
        f"{report['clients']} clients, rooms of {report['room_size']}, "
        f"{report['payload_bytes']} B payloads: {report['sent']} sends in {report['seconds']} s"
    )
    print(f"  throughput   {report['messages_per_s']} messages/s (durably committed, acked)")
    print(
        f"  ack latency  p50 {lat['p50']} ms, p90 {lat['p90']} ms, "
        f"p99 {lat['p99']} ms, max {lat['max']} ms"
    )
    print(
        f"  deliveries   {report['delivered']} of {report['expected_deliveries']} expected, "
        f"{report['duplicates']} duplicates"
    )
    if args.report:
        args.report.write_text(json.dumps(report, indent=2) + "\n")
    ok = report["delivered"] == report["expected_deliveries"] and report["duplicates"] == 0
    return 0 if ok else 1
