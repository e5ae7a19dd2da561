"""``python -m loadtest storm``: a node dies and all its clients reconnect at once.

Starts a Redis and ``--nodes`` node processes serving one port (SO_REUSEPORT, as
``idle``), connects ``--clients`` practitioners of the population (the kernel spreads
them over the nodes), and offers a trickle of messages (``--trickle`` per second). Then
it SIGKILLs one node and closes its listening socket: the port is served by the others
alone, as behind a load balancer once a node is gone. Every client of the dead node
reconnects as the SDK's :class:`~protocol.ClientSession` says (SPEC §2.2: full jitter,
the first retry within 250 ms, so all of them within a quarter of a second), resumes
its rooms and catches up by sync; its unacked sends are resent.

Reported: how many clients lost their node and how many came back, failed
reconnections (a client that gave up after 10 dials: must be 0), dial attempts
retried, the time from the kill until the last of them was welcomed again and the
connect rate that makes, the surviving nodes' CPU over that time, and, once the trickle
stopped and everything settled, that nothing acked was lost and nothing duplicated.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import (
    FILES_PER_PROCESS,
    cpu_seconds,
    load_average,
    node_env,
    quiesce,
    say,
    user_specs,
    wait_connected,
    ws_url,
)
from .fleet import Fleet, RedisServer
from .gen import GenConfig
from .popfile import load_population
from .progress import status
from .report import merge, write_report
from .workers import WorkerPool

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--population", type=Path, default=Path("var/population.msgpack"))
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--nodes", type=int, default=2, help="the storm kills one of them")
    parser.add_argument(
        "--per-process", type=int, default=15_000, help="connections per generator process"
    )
    parser.add_argument("--trickle", type=float, default=20.0, help="messages/s throughout")
    parser.add_argument("--before", type=float, default=3.0, help="seconds before the kill")
    parser.add_argument("--after", type=float, default=3.0, help="seconds once all are back")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to come back")
    parser.add_argument("--report", type=Path, help="write the figures as JSON here")


def _sum(snaps: list[dict[str, Any]], key: str) -> int:
    return sum(int(s[key]) for s in snaps)


async def _storm(args: argparse.Namespace) -> dict[str, Any]:
    if args.nodes < 2:
        raise SystemExit("storm needs --nodes 2 or more: one dies, the others take its clients")
    population = load_population(args.population)
    count = min(args.clients, len(population.users))
    generators = max(1, math.ceil(count / min(args.per_process, FILES_PER_PROCESS)))
    redis = RedisServer()
    await redis.start()
    with tempfile.TemporaryDirectory(prefix="loadtest-storm-") as workdir:
        env = node_env(population.database_url, redis.url, workdir)
        # The storm is the nodes' to absorb with their production settings: the hello
        # timeout that ``idle`` raises for its connection ramp stays the default here.
        del env["CONFRERE_HELLO_TIMEOUT_S"]
        fleet = Fleet(args.nodes, env)
        pool: WorkerPool | None = None
        try:
            await fleet.start()
            config = GenConfig(ws_url(fleet.url), payload_min=200, payload_max=2048)
            pool = WorkerPool(config, user_specs(population, range(count)), generators)
            pool.start()
            counts, connect_s = await wait_connected(pool, "storm: connect")
            connections = counts["connections"]
            say(f"storm: {connections} connected over {args.nodes} nodes in {connect_s:.1f} s")
            if args.trickle > 0:
                await pool.call("rate", rate=args.trickle / len(pool.procs), step=1)
            await asyncio.sleep(args.before)

            before = await pool.call("snapshot")
            victim = fleet.procs[0].pid
            survivors = fleet.pids[1:]
            cpu_before = sum(cpu_seconds(pid) for pid in survivors)
            load_before = load_average()
            killed_ns = time.time_ns()
            fleet.retire(0)
            # Every client of the dead node notices (its socket closed) and redials.
            lost_node = 0
            back = False
            deadline = time.monotonic() + args.timeout
            while time.monotonic() < deadline:
                await asyncio.sleep(0.1)
                snaps = await pool.call("snapshot")
                lost_node = _sum(snaps, "disconnects") - _sum(before, "disconnects")
                reconnected = _sum(snaps, "connects") - _sum(before, "connects")
                failed = _sum(snaps, "connect_failures") - _sum(before, "connect_failures")
                status(
                    f"storm: node {victim} killed {(time.time_ns() - killed_ns) / 1e9:.1f} s ago:"
                    f" {lost_node} clients lost it, {reconnected} back, {failed} failed,"
                    f" {_sum(snaps, 'connections')}/{connections} connected"
                )
                if lost_node and reconnected + failed >= lost_node:
                    back = _sum(snaps, "connections") + failed >= connections
                    if back:
                        break
            status("\n")
            snaps = await pool.call("snapshot")
            cpu_storm = sum(cpu_seconds(pid) for pid in survivors) - cpu_before
            load_storm = load_average()
            reconnected = _sum(snaps, "connects") - _sum(before, "connects")
            failed = _sum(snaps, "connect_failures") - _sum(before, "connect_failures")
            retries = _sum(snaps, "connect_retries") - _sum(before, "connect_retries")
            last_ns = max(int(s["last_welcome_ns"]) for s in snaps)
            storm_s = max(0.0, (last_ns - killed_ns) / 1e9)

            await asyncio.sleep(args.after)  # the trickle goes on, over the survivors
            await pool.call("rate", rate=0, step=1)
            await quiesce(pool, connections - failed)
            total = merge(await pool.call("snapshot", full=True))
            return {
                "clients": count,
                "nodes": args.nodes,
                "connections": connections,
                "connect_failures": counts["connect_failures"],
                "connect_per_s": round(connections / connect_s, 1) if connect_s else 0.0,
                "killed_node_pid": victim,
                "clients_of_killed_node": lost_node,
                "reconnected": reconnected,
                "failed_reconnections": failed,
                "reconnect_retries": retries,
                "all_back": back and failed == 0,
                "storm_s": round(storm_s, 3),
                "storm_connect_per_s": round(reconnected / storm_s, 1) if storm_s else 0.0,
                "survivors_cpu_s": round(cpu_storm, 2),
                "survivors_cpu_us_per_reconnect": round(cpu_storm * 1e6 / max(1, reconnected)),
                "load_avg_before": load_before,
                "load_avg_after": load_storm,
                "generator_processes": len(pool.procs),
                "sent": total["sent"],
                "acked": total["acked"],
                "resent": total["resent"],
                "delivered": total["delivered"],
                "caught_up": total["caught_up"],
                "expected": total["expected"],
                "lost": total["lost"],
                "duplicates": total["duplicates"],
                "out_of_order": total["out_of_order"],
                "server_close_codes": total["server_close_codes"],
                "latency_ms": total["latency_ms"],
                "longest_delivery_gap_ms": total["longest_delivery_gap_ms"],
                "errors_sample": total["errors_sample"],
                "anomalies_sample": total["anomalies_sample"],
                "series": total["series"],
            }
        finally:
            if pool is not None:
                await pool.close()
            fleet.close()
            redis.close()


def run(args: argparse.Namespace) -> int:
    report = asyncio.run(_storm(args))
    print(
        f"storm: {report['clients_of_killed_node']} of {report['connections']} clients lost"
        f" their node (SIGKILL, 1 of {report['nodes']}); {report['reconnected']} reconnected,"
        f" {report['failed_reconnections']} failed ({report['reconnect_retries']} dials"
        f" retried); all back {report['storm_s']} s after the kill"
        f" ({report['storm_connect_per_s']}/s; surviving nodes' CPU"
        f" {report['survivors_cpu_us_per_reconnect']} µs per reconnection;"
        f" load average {report['load_avg_before']} -> {report['load_avg_after']})"
    )
    print(
        f"  trickle through the storm: {report['sent']} sent, {report['acked']} acked"
        f" ({report['resent']} resent), {report['delivered']} delivered live +"
        f" {report['caught_up']} by sync of {report['expected']} expected: {report['lost']}"
        f" lost, {report['duplicates']} duplicates"
    )
    if args.report:
        page = write_report(args.report, report, "loadtest storm")
        print(f"  report: {args.report}, {page}")
    ok = (
        report["all_back"]
        and report["failed_reconnections"] == 0
        and report["lost"] == 0
        and report["duplicates"] == 0
        and report["acked"] == report["sent"]
    )
    return 0 if ok else 1
