"""``python -m loadtest idle``: open and hold N authenticated connections.

Reads the population file ``populate`` wrote. Starts a Redis and as many node
processes as the 20,000-files-per-process cap needs (one port, SO_REUSEPORT), and as
many load-generator processes, each from its own 127.0.0.x source address; connects
the first ``--connections`` practitioners, holds them ``--hold`` seconds with a
trickle of messages (``--trickle`` per second, checked for loss like any other), and
counts disconnects. Server memory per connection is the growth of the nodes' RSS from
before the connections to after them, divided by their number; the connect rate runs
from the first dial to the last welcome (upgrade, hello and welcome), with the nodes'
CPU per connection over that time. Then (``--floor``, default) the same connections
against as many floor processes, for the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
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
from .fleet import Fleet, RedisServer, rss_kib
from .gen import GenConfig
from .popfile import Population, load_population
from .progress import status
from .report import merge, write_report
from .workers import WorkerPool

__all__ = ["add_arguments", "hold", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--population", type=Path, default=Path("var/population.msgpack"))
    parser.add_argument("--connections", type=int, help="default: the whole population")
    parser.add_argument("--per-process", type=int, default=15_000, help="connections per node")
    parser.add_argument("--hold", type=float, default=300.0, help="seconds")
    parser.add_argument("--trickle", type=float, default=20.0, help="messages/s while holding")
    parser.add_argument("--floor", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--floor-hold", type=float, default=30.0, help="seconds")
    parser.add_argument("--report", type=Path, help="write the figures as JSON here")


async def hold(
    population: Population,
    count: int,
    *,
    per_process: int,
    hold_s: float,
    trickle: float,
    floor: bool,
    label: str,
    ip_base: str,
) -> dict[str, Any]:
    """One fleet (ours on Redis, or the floor), ``count`` connections held ``hold_s``."""
    per_process = min(per_process, FILES_PER_PROCESS)
    processes = max(1, math.ceil(count / per_process))
    redis: RedisServer | None = None
    with tempfile.TemporaryDirectory(prefix="loadtest-idle-") as workdir:
        if floor:
            fleet = Fleet(processes, {}, command=(sys.executable, "-m", "loadtest.floor"))
        else:
            redis = RedisServer()
            await redis.start()
            fleet = Fleet(processes, node_env(population.database_url, redis.url, workdir))
        pool: WorkerPool | None = None
        try:
            await fleet.start()
            await asyncio.sleep(1.0)
            rss_before = fleet.rss_kib()
            specs = user_specs(population, range(count))
            config = GenConfig(ws_url(fleet.url), floor=floor, payload_min=200, payload_max=2048)
            pool = WorkerPool(config, specs, processes, ip_base=ip_base)
            pool.start()
            load_before = load_average()
            cpu_before = sum(cpu_seconds(pid) for pid in fleet.pids)
            counts, connect_s = await wait_connected(pool, f"{label}: connect")
            connect_cpu_s = sum(cpu_seconds(pid) for pid in fleet.pids) - cpu_before
            load_connected = load_average()
            await asyncio.sleep(2.0)
            rss_after = fleet.rss_kib()
            connections = counts["connections"]
            connect_cpu_us = connect_cpu_s * 1e6 / max(1, connections)
            say(
                f"{label}: {connections} connected in {connect_s:.1f} s"
                f" ({connections / connect_s:.0f}/s, server CPU {connect_cpu_us:.0f} µs"
                f" per connection), {counts['connect_failures']} failed;"
                f" server RSS {rss_before // 1024} -> {rss_after // 1024} MiB"
                f" ({(rss_after - rss_before) / max(1, connections):.2f} KiB/connection)"
            )
            if trickle > 0 and not floor:
                await pool.call("rate", rate=trickle / len(pool.procs), step=1)
            started = time.time()
            min_conns = connections
            at_start = sum(s["disconnects"] for s in await pool.call("snapshot"))
            disconnects_holding = 0
            while time.time() - started < hold_s:
                await asyncio.sleep(1.0)
                snaps = await pool.call("snapshot")
                now_conns = sum(s["connections"] for s in snaps)
                min_conns = min(min_conns, now_conns)
                disconnects_holding = sum(s["disconnects"] for s in snaps) - at_start
                status(
                    f"{label}: holding {now_conns} connections,"
                    f" {disconnects_holding} disconnects (+{at_start} while connecting),"
                    f" {sum(s['delivered'] for s in snaps)} deliveries,"
                    f" {time.time() - started:.0f}/{hold_s:.0f} s, server RSS"
                    f" {fleet.rss_kib() // 1024} MiB, nodes alive {fleet.alive()}/{processes}"
                )
            await pool.call("rate", rate=0, step=1)
            await quiesce(pool, 0)  # the last trickle messages arrive
            status("\n")
            total = merge(await pool.call("snapshot", full=True))
            rss_held = fleet.rss_kib()
            return {
                "connections": connections,
                "min_connections_while_holding": min_conns,
                "connect_failures": counts["connect_failures"],
                # Upgrade, hello and welcome, from the first dial to the last welcome.
                "connect_per_s": round(connections / connect_s, 1) if connect_s else 0.0,
                "connect_s": round(connect_s, 2),
                "server_cpu_us_per_connect": round(connect_cpu_us, 1),
                "load_avg_connected": load_connected,
                "disconnects": total["disconnects"],
                "disconnects_while_holding": disconnects_holding,
                "server_close_codes": total["server_close_codes"],
                "server_processes": processes,
                "generator_processes": len(pool.procs),
                "server_rss_kib_before": rss_before,
                "server_rss_kib": rss_after,
                "server_rss_kib_end": rss_held,
                "server_rss_per_conn_kib": round((rss_after - rss_before) / max(1, connections), 2),
                "redis_rss_kib": rss_kib(redis.pid) if redis is not None else None,
                "generator_rss_kib": sum(rss_kib(p) for p in pool.pids),
                "hold_s": hold_s,
                "sent": total["sent"],
                "acked": total["acked"],
                "delivered": total["delivered"],
                "expected": total["expected"],
                "lost": total["lost"],
                "duplicates": total["duplicates"],
                "deliveries_per_s": round(total["delivered"] / max(1.0, hold_s), 1),
                "latency_ms": total["latency_ms"],
                "load_avg_before": load_before,
                "load_avg_after": load_average(),
                "errors_sample": total["errors_sample"],
                "series": total["series"],
            }
        finally:
            if pool is not None:
                await pool.close()
            fleet.close()
            if redis is not None:
                redis.close()


async def _idle(args: argparse.Namespace) -> dict[str, Any]:
    population = load_population(args.population)
    count = min(args.connections or len(population.users), len(population.users))
    report = await hold(
        population,
        count,
        per_process=args.per_process,
        hold_s=args.hold,
        trickle=args.trickle,
        floor=False,
        label="ours",
        ip_base="127.0.0",
    )
    if args.floor:
        floor = await hold(
            population,
            count,
            per_process=args.per_process,
            hold_s=args.floor_hold,
            trickle=0,
            floor=True,
            label="floor",
            ip_base="127.0.1",
        )
        report["floor"] = floor
        report["connect_ratio_to_floor"] = round(
            report["connect_per_s"] / max(0.1, floor["connect_per_s"]), 2
        )
        report["rss_ratio_to_floor"] = round(
            report["server_rss_per_conn_kib"] / max(0.01, floor["server_rss_per_conn_kib"]), 2
        )
    return report


def run(args: argparse.Namespace) -> int:
    report = asyncio.run(_idle(args))
    print(
        f"idle: {report['connections']} connections held {report['hold_s']:.0f} s on"
        f" {report['server_processes']} nodes: {report['disconnects_while_holding']} disconnects"
        f" while holding ({report['disconnects']} in all, server close codes"
        f" {report['server_close_codes']}),"
        f" {report['connect_failures']} failed to connect;"
        f" {report['server_rss_per_conn_kib']} KiB server RSS per connection;"
        f" trickle {report['delivered']} deliveries, {report['lost']} lost,"
        f" {report['duplicates']} duplicates"
    )
    print(
        f"  connect (upgrade + hello + welcome): ours {report['connect_per_s']}/s,"
        f" server CPU {report['server_cpu_us_per_connect']} µs per connection"
        f" (load average {report['load_avg_before']} -> {report['load_avg_connected']})"
    )
    if "floor" in report:
        floor = report["floor"]
        print(
            f"  floor: connect {floor['connect_per_s']}/s, server CPU"
            f" {floor['server_cpu_us_per_connect']} µs per connection; connect ratio"
            f" {report['connect_ratio_to_floor']}; {floor['server_rss_per_conn_kib']} KiB"
            f" per connection, RSS ratio {report['rss_ratio_to_floor']}"
        )
    if args.report:
        page = write_report(args.report, report, "loadtest idle")
        print(f"  report: {args.report}, {page}")
    ok = (
        report["disconnects_while_holding"] == 0
        and report["lost"] == 0
        and report["duplicates"] == 0
    )
    return 0 if ok else 1
