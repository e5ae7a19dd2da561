"""``python -m loadtest run``: a practitioner-day mix, checked delivery by delivery.

Reads the population file; ``--online`` of the practitioners connect (to ``--url``,
or to nodes this command starts itself on a Redis when no URL is given). They send
``--rate`` messages/s in total (random senders, bursts: ``--burst`` is the chance a
message is followed at once by another from the same person) of 200 B - 2 KB of random
ciphertext, answer a share of deliveries with read receipts, announce typing before
some sends, and ``--churn`` of the connections drop each minute and come back 1-5 s
later, catching up by ``sync`` (mobile networks). Every delivery is checked: send ->
ack and send -> delivery latency, nothing lost, nothing duplicated, per-room order.

A soak: ``--faults`` breaks things on a schedule while the load runs (a node killed,
Redis and PostgreSQL restarted, a client that stops reading: :mod:`loadtest.faults`).
``--start-postgres --users N`` runs it on a throwaway PostgreSQL of its own (fsync on),
populated with N practitioners, so that it can be restarted.

``--read-all``: every delivery is read (:attr:`GenConfig.read_all`) instead of a share.
``--receipts-cost``: instead of a timed run, the sustained send rate without receipts
and with every delivery read (:mod:`loadtest.receipts_cost`).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import FILES_PER_PROCESS, load_average, node_env, say, user_specs, wait_connected
from .common import ws_url as to_ws_url
from .faults import FaultInjector, parse_faults
from .fleet import Fleet, RedisServer
from .gen import GenConfig
from .popfile import load_population
from .populate import populate
from .postgres import fresh_database, start_postgres
from .progress import status
from .receipts_cost import add_arguments as add_receipts_cost_arguments
from .receipts_cost import measure_receipts_cost
from .report import merge, write_report
from .workers import WorkerPool

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--population", type=Path, default=Path("var/population.msgpack"))
    parser.add_argument("--url", help="a running deployment (http://host:port); default: start one")
    parser.add_argument("--online", type=float, default=0.3, help="share of practitioners online")
    parser.add_argument("--rate", type=float, default=200.0, help="messages/s in total")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds")
    parser.add_argument("--burst", type=float, default=0.3)
    parser.add_argument(
        "--read", type=float, default=0.2, help="share of deliveries read-receipted"
    )
    parser.add_argument(
        "--read-all",
        action="store_true",
        help="every delivery read: at most one receipt per room per second (as the web client)",
    )
    parser.add_argument("--typing", type=float, default=0.2, help="share of sends after a typing")
    parser.add_argument("--churn", type=float, default=0.05, help="share dropped per minute")
    parser.add_argument("--per-process", type=int, default=15_000)
    parser.add_argument("--nodes", type=int, default=0, help="node processes (default: as needed)")
    parser.add_argument(
        "--faults", default="", help="e.g. kill-node@60,restart-redis@150 (loadtest.faults)"
    )
    parser.add_argument(
        "--start-postgres",
        action="store_true",
        help="on a throwaway PostgreSQL of the run's own, populated with --users",
    )
    parser.add_argument("--users", type=int, default=2000, help="with --start-postgres")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--report", type=Path, help="write the figures as JSON here")
    add_receipts_cost_arguments(parser)


async def _timed_load(
    args: argparse.Namespace, pool: WorkerPool, injector: FaultInjector, faults: list[Any]
) -> None:
    """``--rate`` for ``--duration`` with churn, and the faults on their schedule."""
    await pool.call("rate", rate=args.rate / len(pool.procs), step=1)
    await pool.call("churn", per_min=args.churn)
    started = time.time()
    pending_faults, applying = list(faults), set()
    while time.time() - started < args.duration:
        await asyncio.sleep(1.0)
        while pending_faults and pending_faults[0].at_s <= time.time() - started:
            fault = pending_faults.pop(0)
            say(f"run: fault {fault.kind} at {time.time() - started:.0f} s")
            task = asyncio.create_task(injector.apply(fault, time.time() - started))
            applying.add(task)
            task.add_done_callback(applying.discard)
        snaps = await pool.call("snapshot")
        status(
            f"run: {sum(s['connections'] for s in snaps)} online,"
            f" sent {sum(s['sent'] for s in snaps)},"
            f" acked {sum(s['acked'] for s in snaps)},"
            f" delivered {sum(s['delivered'] for s in snaps)}"
            f" (+{sum(s['caught_up'] for s in snaps)} by sync),"
            f" churned {sum(s['churned'] for s in snaps)},"
            f" {time.time() - started:.0f}/{args.duration:.0f} s"
        )
    await pool.call("rate", rate=0, step=1)
    await pool.call("churn", per_min=0)
    if applying:  # a fault still running: let it finish (the node comes back...)
        await asyncio.gather(*applying)


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    faults = parse_faults(args.faults)
    if args.receipts_cost and faults:
        raise SystemExit("run: --receipts-cost measures a steady load: no --faults with it")
    redis: RedisServer | None = None
    fleet: Fleet | None = None
    pool: WorkerPool | None = None
    postgres: Any = None
    with tempfile.TemporaryDirectory(prefix="loadtest-run-") as workdir:
        try:
            population_file = args.population
            if args.start_postgres:
                postgres = start_postgres()
                database_url = await fresh_database(postgres)
                population_file = Path(workdir) / "population.msgpack"
                say(f"run: populating {args.users} practitioners on a throwaway PostgreSQL")
                await populate(args.users, database_url, population_file)
            population = load_population(population_file)
            n = len(population.users)
            online = max(1, min(n, round(n * args.online)))
            numbers = sorted(random.Random(args.seed).sample(range(n), online))
            processes = max(1, math.ceil(online / min(args.per_process, FILES_PER_PROCESS)))
            # Measuring cost: the nodes on one core, the generators and Redis on the
            # other (as bench does), so that nothing else of ours competes with them.
            pin = args.receipts_cost and (os.cpu_count() or 0) >= 2
            if args.url:
                url = args.url
            else:
                redis = RedisServer(cpus=[1] if pin else None)
                await redis.start()
                env = node_env(population.database_url, redis.url, workdir)
                fleet = Fleet(max(processes, args.nodes), env, cpus=[0] if pin else None)
                await fleet.start()
                url = fleet.url
            rss_before = fleet.rss_kib() if fleet else 0
            config = GenConfig(
                to_ws_url(url),
                payload_min=200,
                payload_max=2048,
                read_fraction=0.0 if args.receipts_cost else args.read,
                read_all=args.read_all and not args.receipts_cost,
                typing_fraction=args.typing,
                burst=args.burst,
            )
            specs = user_specs(population, numbers)
            pool = WorkerPool(config, specs, processes, cpus={1} if pin else None)
            injector = FaultInjector(fleet, redis, postgres, pool)
            injector.check(faults)
            pool.start()
            load_before = load_average()
            counts, connect_s = await wait_connected(pool, "run: connect")
            rss_after = fleet.rss_kib() if fleet else 0
            started = time.time()
            receipts_cost = None
            if args.receipts_cost:
                pids = fleet.pids if fleet else []
                receipts_cost = await measure_receipts_cost(pool, pids, url, args)
            else:
                await _timed_load(args, pool, injector, faults)
            elapsed = time.time() - started if args.receipts_cost else args.duration
            # Quiesce: everyone back online and caught up, and nothing arriving any more
            # for two seconds (the last deliveries are in).
            deadline = time.time() + 60
            last_seen, stable_since = -1, time.time()
            while time.time() < deadline:
                await asyncio.sleep(0.5)
                snaps = await pool.call("snapshot")
                back = sum(s["connections"] for s in snaps)
                syncing = sum(s["syncing"] for s in snaps)
                seen = sum(s["delivered"] + s["caught_up"] + s["acked"] for s in snaps)
                if seen != last_seen or back < counts["connections"] or syncing:
                    last_seen, stable_since = seen, time.time()
                elif time.time() - stable_since >= 2.0:
                    break
            status("\n")
            total = merge(await pool.call("snapshot", full=True))
            report = {
                "connections": counts["connections"],
                "connect_failures": counts["connect_failures"],
                "connect_per_s": round(counts["connections"] / connect_s, 1),
                "online_share": args.online,
                "offered_messages_per_s": args.rate,
                "duration_s": elapsed,
                "sent": total["sent"],
                "acked": total["acked"],
                "errors": total["errors"],
                "delivered": total["delivered"],
                "caught_up_by_sync": total["caught_up"],
                "expected": total["expected"],
                "lost": total["lost"],
                "duplicates": total["duplicates"],
                "out_of_order": total["out_of_order"],
                "ephemeral_received": total["ephemeral"],
                "receipts_sent": total["reads_sent"],
                "receipts_acked": total["reads_acked"],
                "churned": total["churned"],
                "resent_after_resume": total["resent"],
                "disconnects": total["disconnects"],
                "deliveries_per_s": round(total["delivered"] / elapsed, 1),
                "latency_ms": total["latency_ms"],
                "longest_delivery_gap_ms": total["longest_delivery_gap_ms"],
                "stalled_client_gap_ms": total["stalled_client_gap_ms"],
                "faults": injector.log,
                "stalled": total["stalled"],
                "ack_latency_ms": total["ack_latency_ms"],
                "receipt_ack_latency_ms": total["read_ack_latency_ms"],
                "server_rss_per_conn_kib": round(
                    (rss_after - rss_before) / counts["connections"], 2
                )
                if fleet and counts["connections"]
                else None,
                "generator_cpu_s": total["generator_cpu_s"],
                "load_avg_before": load_before,
                "load_avg_after": load_average(),
                "errors_sample": total["errors_sample"],
                "anomalies_sample": total["anomalies_sample"],
                "series": total["series"],
            }
            if receipts_cost is not None:
                report["receipts_cost"] = receipts_cost
            return report
        finally:
            if pool is not None:
                await pool.close()
            if fleet is not None:
                fleet.close()
            if redis is not None:
                redis.close()
            if postgres is not None:
                postgres.stop()


def run(args: argparse.Namespace) -> int:
    report = asyncio.run(_run(args))
    lat, ack = report["latency_ms"], report["ack_latency_ms"]
    say(
        f"run: {report['connections']} online, {report['sent']} sent, {report['acked']} acked,"
        f" {report['delivered']} delivered live + {report['caught_up_by_sync']} by sync"
        f" of {report['expected']} expected: {report['lost']} lost,"
        f" {report['duplicates']} duplicates, {report['out_of_order']} out of order"
    )
    say(
        f"  delivery p50 {lat['p50']} p90 {lat['p90']} p99 {lat['p99']} max {lat['max']} ms;"
        f" ack p50 {ack['p50']} p99 {ack['p99']} ms; {report['churned']} churned;"
        f" longest delivery gap {report['longest_delivery_gap_ms']} ms"
        f" (stalled clients: {report['stalled_client_gap_ms']} ms)"
    )
    for fault in report["faults"]:
        say(
            f"  fault {fault['kind']} at {fault['at_s']} s, took {fault['took_s']} s"
            f" {fault['detail']}".rstrip()
        )
    if args.report:
        page = write_report(args.report, report, "loadtest run")
        print(f"  report: {args.report}, {page}", file=sys.stderr)
    if report["out_of_order"]:
        say(
            "  (out of order: arrivals below a seq already received. Several nodes commit to"
            " one room and each publishes after its own commit, so arrivals can cross;"
            " clients order by seq. On one node there must be none.)"
        )
    cost = report.get("receipts_cost")
    if cost is not None:
        without, with_ = cost["without"], cost["read_all"]
        say(
            f"  sustained sends/s: {without['sustained_sends_per_s']:,} without receipts"
            f" (stopped by: {without['stopped_by']}), {with_['sustained_sends_per_s']:,} with"
            f" every delivery read (stopped by: {with_['stopped_by']}): ratio"
            f" {cost['sends_ratio']}, receipts cost {cost['cost']:.0%}"
        )
        equal = cost["cpu_at_equal_load"]
        if equal:
            say(
                f"  server CPU per send at {equal['offered_sends_per_s']:,} sends/s:"
                f" {equal['without_us_per_send']} us without receipts,"
                f" {equal['with_us_per_send']} us with (x{equal['ratio']})"
            )
    ok = report["lost"] == 0 and report["duplicates"] == 0
    return 0 if ok else 1
