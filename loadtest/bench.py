"""``python -m loadtest bench``: the fan-out saturation rate, ours against the floor's.

Self-contained. Loads ``--connections`` practitioners in rooms of ``--room-size``
(bulk, into a temporary SQLite database unless ``CONFRERE_DATABASE_URL`` is set),
starts one node pinned to CPU 0 and one load-generator process pinned to CPU 1, and
steps the offered delivery rate up (x ``--factor`` per step of ``--step-seconds``)
until p99 delivery latency passes ``--p99-ms``, anything is lost, or the achieved
rate falls short of the offered one; then ``--refine`` more steps bisect between the
last rate that passed and the first that failed (a x1.4 grid alone would round every
ratio to a power of 1.4). A failed step is run once more at the same rate before it
counts (see ``try_again``), and after a step the server did not keep up with the next
waits until its backlog is delivered. The highest step that passed is the saturation
rate. Then
the same against the floor server (``loadtest.floor``) and, with ``redis`` in
``--targets`` (default when redis-server is installed), our node on the Redis broker.
The production configuration (``pg``: one node on PostgreSQL + Redis; ``pg2``: two
nodes on them, the connections spread over both by SO_REUSEPORT so that every room has
members on each and about half of each message's deliveries cross through Redis) runs
with ``--database-url`` (a throwaway database: bench populates it) or
``--start-postgres``; every node is pinned to the server's core, and the Redis and
PostgreSQL bench starts to the generator's (:mod:`loadtest.backends`).

The generator's own CPU is reported per step: a step where it used more than 90% of
its core says the generator, not the server, was the limit.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .backends import Backends
from .common import (
    CoreGroup,
    load_average,
    say,
    steal_ticks,
    user_specs,
    wait_connected,
    ws_url,
)
from .fleet import Fleet, RedisServer
from .gen import GenConfig
from .neighbour import Neighbour
from .popfile import Population
from .populate import populate
from .progress import status
from .report import hist_percentiles, merge, write_report
from .workers import WorkerPool

__all__ = ["RateSearch", "add_arguments", "run", "try_again"]

SERVER_CPU = 0
GENERATOR_CPU = 1
TARGETS = ("ours", "floor", "redis", "pg", "pg2")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--room-size", type=int, default=20)
    parser.add_argument("--payload", type=int, default=100, help="bytes per message body")
    parser.add_argument("--start", type=float, default=2000, help="first offered deliveries/s")
    parser.add_argument("--factor", type=float, default=1.4, help="rate multiplier per step")
    parser.add_argument("--step-seconds", type=float, default=5.0)
    parser.add_argument("--max-steps", type=int, default=16)
    parser.add_argument("--p99-ms", type=float, default=100.0)
    parser.add_argument(
        "--refine", type=int, default=3, help="bisection steps after the first failure"
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=2,
        help="repeats of a failed step: one for any failure, up to this many while contended"
        " (0: none)",
    )
    parser.add_argument(
        "--targets",
        help="comma-separated: ours (SQLite, memory broker), redis (ours on Redis), floor,"
        " pg (one node on PostgreSQL + Redis), pg2 (two nodes on them, sharing the rooms);"
        " default: ours,floor,redis, and pg,pg2 with --database-url or --start-postgres",
    )
    parser.add_argument(
        "--database-url",
        help="PostgreSQL for the pg targets: a throwaway database (bench populates it)",
    )
    parser.add_argument(
        "--start-postgres",
        action="store_true",
        help="for the pg targets, start a throwaway PostgreSQL (fsync on) beside the generator",
    )
    parser.add_argument(
        "--broker-url", help="Redis for the redis and pg targets (default: start one)"
    )
    parser.add_argument(
        "--at",
        type=float,
        default=40_000,
        help="the headline's fixed offered rate, deliveries/s (0: none)",
    )
    parser.add_argument("--at-seconds", type=float, default=10.0)
    parser.add_argument(
        "--saturation",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="after the fixed rate, step up to the saturation rate",
    )
    parser.add_argument(
        "--noisy",
        action="store_true",
        help="measure again with a CPU and disk load on the generator's core",
    )
    parser.add_argument("--report", type=Path, help="write the figures as JSON here")


class RateSearch:
    """Which rate to offer next: up by ``factor`` until a step fails (or ``max_steps``
    passed), then ``refine`` geometric bisections between the highest rate that passed
    and the lowest that failed. With ``descend``, a first rate that fails is divided by
    ``factor`` until one passes (within ``max_steps``), then bisected."""

    def __init__(
        self, start: float, factor: float, max_steps: int, refine: int, descend: bool = False
    ) -> None:
        self.rate = start
        self.factor = factor
        self.descend = descend
        self.max_steps = max_steps
        self.refine = refine
        self.passed: float | None = None  # highest rate that passed
        self.failed: float | None = None  # lowest rate that failed
        self.steps = 0
        self.refined = 0

    def record(self, ok: bool) -> float | None:
        """The outcome of the step at ``self.rate``; the next rate, or None to stop."""
        self.steps += 1
        if ok:
            self.passed = self.rate
        else:
            self.failed = self.rate
        if self.failed is None:
            if self.steps >= self.max_steps:
                return None
            self.rate *= self.factor
            return self.rate
        if self.passed is None and self.descend and self.steps < self.max_steps:
            self.rate /= self.factor
            return self.rate
        if self.passed is None or self.refined >= self.refine:
            return None
        self.refined += 1
        self.rate = (self.passed * self.failed) ** 0.5
        return self.rate


def _pin_ok() -> bool:
    return os.cpu_count() is not None and (os.cpu_count() or 0) >= 2


class _Step:
    """One step's offered rate against the running server; its row of the table."""

    def __init__(
        self,
        args: argparse.Namespace,
        pool: WorkerPool,
        server: Fleet,
        label: str,
        beside: list[int],
    ):
        self.args = args
        self.pool = pool
        self.server = server
        self.label = label
        # The nodes share the server's core; Redis and PostgreSQL (``beside``), when
        # bench started them, the generator's.
        self.gen_core = CoreGroup(pool.pids[:1], beside)
        self.srv_core = CoreGroup(server.pids)
        self.fanout = args.room_size - 1
        self.k = 0
        self.prev: dict[str, Any] = {}

    async def start(self) -> None:
        self.prev = (await self.pool.call("snapshot"))[0]

    async def run(self, rate: float, seconds: float, name: str) -> dict[str, Any]:
        self.k += 1
        k, pool, fanout = self.k, self.pool, self.fanout
        load_before = load_average()
        gen0, srv0, t0 = self.gen_core.sample(), self.srv_core.sample(), time.time()
        steal0 = steal_ticks()
        await pool.call("rate", rate=rate / fanout, step=k)
        while time.time() - t0 < seconds:
            await asyncio.sleep(0.5)
            snap = (await pool.call("snapshot"))[0]
            status(
                f"{self.label} {name}: offered {rate:,.0f} deliveries/s,"
                f" delivered {snap['delivered'] - self.prev['delivered']:,}"
            )
        await pool.call("rate", rate=0, step=k)
        wall = time.time() - t0
        steal = _steal(steal0, steal_ticks())
        gen_cpu, beside_cpu, gen_wait = self.gen_core.since(gen0, wall)
        gen_cpu_s = gen_cpu * wall
        _, _, srv_wait = self.srv_core.since(srv0, wall)
        # Drain: what was sent in this step is acked and delivered, or given up on.
        deadline = time.time() + 5
        while True:
            snap = (await pool.call("snapshot"))[0]
            sent, acked, delivered = snap["steps"].get(k, [0, 0, 0])
            if (acked == sent and delivered >= acked * fanout) or time.time() > deadline:
                break
            await asyncio.sleep(0.1)
        # The server's CPU until everything of the step was delivered: a server that
        # falls behind still pays for what it delivers late.
        srv_cpu_s = self.srv_core.sample().cpu - srv0.cpu
        behind = not (acked == sent and delivered >= acked * fanout)
        full = (await pool.call("snapshot", full=True))[0]
        sent, acked, delivered = full["steps"].get(k, [0, 0, 0])
        lat = hist_percentiles(full["step_hists"].get(k, {}))
        stalls = full.get("stalls", {}).get(k, [0.0, 0.0, 0.0])
        lost = (sent - acked) * fanout + max(0, acked * fanout - delivered)
        achieved = delivered / seconds
        row = {
            "step": k,
            "name": name,
            "offered_per_s": round(rate),
            "delivered_per_s": round(achieved),
            "sent": sent,
            "acked": acked,
            "delivered": delivered,
            "lost": lost,
            "duplicates": full["duplicates"] - self.prev["duplicates"],
            "p50_ms": lat["p50"],
            "p90_ms": lat["p90"],
            "p99_ms": lat["p99"],
            "max_ms": lat["max"],
            "server_cpu": round(srv_cpu_s / wall, 2),
            "generator_cpu": round(gen_cpu_s / wall, 2),
            "beside_generator_cpu": round(beside_cpu, 2),
            "server_cpu_us_per_delivery": round(srv_cpu_s / max(1, delivered) * 1e6, 2),
            "generator_cpu_us_per_delivery": round(gen_cpu_s / max(1, delivered) * 1e6, 2),
            "beside_cpu_us_per_delivery": round(beside_cpu * wall / max(1, delivered) * 1e6, 2),
            "server_cpu_stolen": round(srv_wait, 2),
            "generator_cpu_stolen": round(gen_wait, 2),
            # Share of each pinned core's time the hypervisor gave another guest.
            "server_core_steal": steal.get(SERVER_CPU, 0.0),
            "generator_core_steal": steal.get(GENERATOR_CPU, 0.0),
            # The generator's own pauses (GC, event-loop lag): they delay every delivery
            # it measures meanwhile, whatever the server does.
            "generator_gc_ms": stalls[0],
            "generator_gc_max_ms": stalls[1],
            "generator_lag_max_ms": stalls[2],
            "load_avg": load_before,
        }
        self.prev = full
        row["ok"] = lost == 0 and lat["p99"] <= self.args.p99_ms and achieved >= 0.9 * rate
        say(
            f"{self.label} {name}: offered {rate:>9,.0f}/s delivered {achieved:>9,.0f}/s"
            f" p99 {lat['p99']:>7} ms lost {lost} server cpu {row['server_cpu']:.2f}"
            f" ({row['server_cpu_us_per_delivery']} us/delivery)"
            f" generator cpu {row['generator_cpu']:.2f} (core held by other processes:"
            f" server {srv_wait:.2f}, generator {gen_wait:.2f}; by the hypervisor:"
            f" {row['server_core_steal']:.2f}, {row['generator_core_steal']:.2f};"
            f" generator longest lag {stalls[2]:.0f} ms, GC {stalls[0]:.0f} ms)"
            f" {'ok' if row['ok'] else 'FAIL'}"
        )
        if behind:  # after the row's figures: what arrives late stays lost to this step
            await self._settle()
        return row

    async def _settle(self, most_s: float = 60.0) -> None:
        """After a step the server did not keep up with: wait until it has worked off
        its backlog (every send acked, and no delivery for a second), so that the next
        step does not pay for this one's (a first saturation step after a fixed rate
        the server could not sustain used to fail at 2,000/s that way). Not by the
        server's CPU: a server starved of its core by other processes looks idle."""
        deadline = time.time() + most_s
        last = -1
        while time.time() < deadline:
            snap = (await self.pool.call("snapshot"))[0]
            if snap["acked"] >= snap["sent"] and snap["delivered"] == last:
                return
            last = snap["delivered"]
            status(f"{self.label}: waiting for the server to work off its backlog")
            await asyncio.sleep(1.0)
        say(f"{self.label}: the server was still delivering {most_s:.0f} s after the step")


def _steal(
    before: dict[int, tuple[int, int]], after: dict[int, tuple[int, int]]
) -> dict[int, float]:
    shares: dict[int, float] = {}
    for cpu, (steal, total) in after.items():
        steal0, total0 = before.get(cpu, (steal, total))
        shares[cpu] = round((steal - steal0) / max(1, total - total0), 3)
    return shares


def try_again(tried_again: int, contended: bool, retries: int) -> bool:
    """Whether a step that failed is run again at the same rate, after ``tried_again``
    repeats of it. Once in any case (unless ``retries`` is 0): one pause of a few hundred
    ms (a neighbour's fsync, the hypervisor, a collection) fails a 5 s step's p99 and
    says nothing of the rate, while a rate beyond the server's fails again. While other
    processes held the pinned cores (``contended``), up to ``retries`` times. The failed
    step stays in the table, and the summary names the rates that passed only when
    tried again."""
    return tried_again < retries and (tried_again == 0 or contended)


async def _saturation(step: _Step, args: argparse.Namespace) -> dict[str, Any]:
    """Step the offered rate up, then bisect: the highest step that passed."""
    steps: list[dict[str, Any]] = []
    saturation: dict[str, Any] | None = None  # the highest step that passed
    failure: dict[str, Any] | None = None  # the lowest step that failed
    search = RateSearch(args.start, args.factor, args.max_steps, args.refine)
    rate: float | None = search.rate
    retries = 0
    while rate is not None:
        row = await step.run(rate, args.step_seconds, f"step {step.k + 1}")
        steps.append(row)
        ok = row["ok"]
        contended = max(row["server_cpu_stolen"], row["generator_cpu_stolen"]) >= 0.1
        if not ok and try_again(retries, contended, args.retries):
            retries += 1
            row["retried"] = True
            why = "contended" if contended else "failed once"
            say(f"{step.label}: {why}, trying the same rate again")
            continue
        if ok and retries:
            row["passed_on_retry"] = True
        retries = 0
        if ok:
            saturation = row
        else:
            failure = row
        rate = search.record(ok)
    last = failure or (steps[-1] if steps else {})
    best = saturation or {}
    return {
        "deliveries_per_s": best.get("delivered_per_s", 0),
        "latency_ms": {
            "p50": best.get("p50_ms", 0.0),
            "p90": best.get("p90_ms", 0.0),
            "p99": best.get("p99_ms", 0.0),
            "max": best.get("max_ms", 0.0),
        },
        "generator_cpu_at_limit": last.get("generator_cpu"),
        "generator_limited": bool(last) and _generator_core(last) >= 0.9,
        "server_us_per_delivery": best.get("server_cpu_us_per_delivery"),
        "beside_us_per_delivery": best.get("beside_cpu_us_per_delivery"),
        "stopped_by": _stopped_by(last, args) if failure is not None else "max steps",
        # Rates that failed, then passed when tried again (see --retries).
        "passed_on_retry": [r["offered_per_s"] for r in steps if r.get("passed_on_retry")],
        "steps_table": steps,
    }


async def _measure(
    args: argparse.Namespace,
    population: Population,
    server: Fleet,
    label: str,
    beside: list[int],
) -> dict[str, Any]:
    """CPU per delivery at ``--at``, then the saturation search (quiet, and with a busy
    neighbour when ``--noisy``), against ``server`` (already started). ``beside``: the
    pids sharing the generator's core (the Redis and PostgreSQL bench started)."""
    specs = user_specs(population, range(len(population.users)))
    config = GenConfig(
        ws_url(server.url),
        floor=label == "floor",
        payload_min=args.payload,
        payload_max=args.payload,
        connect_concurrency=100,
    )
    pool = WorkerPool(config, specs, 1, cpus={GENERATOR_CPU} if _pin_ok() else None)
    pool.start()
    try:
        rss_before = server.rss_kib()
        counts, connect_s = await wait_connected(pool, f"{label}: connect")
        await asyncio.sleep(1.0)
        rss_after = server.rss_kib()
        connections = counts["connections"]
        per_node = server.connections()
        step = _Step(args, pool, server, label, beside)
        await step.start()
        result: dict[str, Any] = {}
        if args.at:
            await step.run(args.at, 3.0, "warm-up")  # buffers and caches grow to their size first
            result["at"] = await step.run(args.at, args.at_seconds, f"at {args.at:,.0f}/s")
        if args.saturation:
            result.update(await _saturation(step, args))
        if args.noisy:
            with Neighbour(GENERATOR_CPU if _pin_ok() else None):
                noisy: dict[str, Any] = {}
                if args.at:
                    noisy["at"] = await step.run(
                        args.at, args.at_seconds, f"noisy at {args.at:,.0f}/s"
                    )
                if args.saturation:
                    noisy.update(await _saturation(step, args))
            result["noisy"] = noisy
            if args.saturation:
                result["noisy_ratio_to_quiet"] = round(
                    noisy["deliveries_per_s"] / max(1, result["deliveries_per_s"]), 3
                )
        fanout = args.room_size - 1
        final = merge([await pool.call("snapshot", full=True)][0])
        result.update(
            {
                "connections": connections,
                "connect_failures": counts["connect_failures"],
                "connect_per_s": round(connections / connect_s, 1) if connect_s else 0.0,
                "sent": final["sent"],
                "acked": final["acked"],
                "delivered": final["delivered"],
                "expected": final["sent"] * fanout,
                "lost": final["sent"] * fanout - final["delivered"],
                "duplicates": final["duplicates"],
                "out_of_order": final["out_of_order"],
                "latency_ms_all_steps": final["latency_ms"],
                "ack_latency_ms_all_steps": final["ack_latency_ms"],
                "server_rss_per_conn_kib": round((rss_after - rss_before) / max(1, connections), 2),
                "server_rss_kib": rss_after,
                "nodes": len(server.pids),
                "connections_per_node": per_node,
                "series": final["series"],
                "errors_sample": final["errors_sample"],
            }
        )
        return result
    finally:
        await pool.close()


def _us_per_delivery(step: dict[str, Any], cpu: str) -> float | None:
    """CPU (cores) per delivery of a step, in µs."""
    if not step or not step["delivered_per_s"]:
        return None
    return round(float(step[cpu]) * 1e6 / float(step["delivered_per_s"]), 1)


def _generator_core(step: dict[str, Any]) -> float:
    """How busy the generator's core was: the generator, and Redis and PostgreSQL
    when they share it."""
    return float(step["generator_cpu"] + step.get("beside_generator_cpu", 0.0))


def _stopped_by(last: dict[str, Any], args: argparse.Namespace) -> str:
    if not last:
        return "no step ran"
    reasons = []
    if last["lost"]:
        reasons.append(f"loss ({last['lost']})")
    if last["p99_ms"] > args.p99_ms:
        reasons.append(f"p99 {last['p99_ms']} ms > {args.p99_ms} ms")
    if last["delivered_per_s"] < 0.9 * last["offered_per_s"]:
        reasons.append("delivered < 90% of offered")
    if _generator_core(last) >= 0.9:
        reasons.append("GENERATOR SATURATED (its core was the limit, not the server's)")
    stolen = max(last["server_cpu_stolen"], last["generator_cpu_stolen"])
    if stolen >= 0.1:
        reasons.append(f"CONTENDED: other processes held the pinned cores {stolen:.0%} of the time")
    steal = max(last.get("server_core_steal", 0.0), last.get("generator_core_steal", 0.0))
    if steal >= 0.05:
        reasons.append(f"the hypervisor held a pinned core {steal:.0%} of the time")
    lag = last.get("generator_lag_max_ms", 0.0)
    if last["p99_ms"] > args.p99_ms and lag >= args.p99_ms / 2:
        reasons.append(
            f"the generator itself stalled {lag:.0f} ms"
            f" (its longest GC pause {last.get('generator_gc_max_ms', 0.0):.0f} ms)"
        )
    return ", ".join(reasons) or "ok"


async def _populated(args: argparse.Namespace, database_url: str, popfile: Path) -> Population:
    from .popfile import load_population

    await populate(args.connections, database_url, popfile, room_size=args.room_size)
    return load_population(popfile)


def _targets(args: argparse.Namespace, backends: Backends) -> list[str]:
    if args.targets:
        targets = [t.strip() for t in args.targets.split(",") if t.strip()]
        for target in targets:
            if target not in TARGETS:
                raise SystemExit(f"--targets: unknown {target!r} (known: {', '.join(TARGETS)})")
        return targets
    targets = ["ours", "floor"]
    if RedisServer.available() or args.broker_url:
        targets.append("redis")
    if backends.has_postgres:
        targets += ["pg", "pg2"]
    return targets


async def _bench(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    database_url = os.environ.get("CONFRERE_DATABASE_URL", f"sqlite:///{workdir / 'bench.db'}")
    cpus = [SERVER_CPU] if _pin_ok() else None
    # Redis and PostgreSQL are other hosts in production: here they share the
    # generator's core, so that the nodes have the same core to themselves in every run.
    backends = Backends(
        broker_url=args.broker_url,
        database_url=args.database_url,
        start_postgres=args.start_postgres,
        cpus=[GENERATOR_CPU] if cpus else None,
    )
    targets = _targets(args, backends)
    env = {
        "CONFRERE_DATABASE_URL": database_url,
        "CONFRERE_LOG_LEVEL": "warning",
        "CONFRERE_PASSWORD_COST": "min",
        "CONFRERE_BLOB_URL": f"file://{workdir / 'blobs'}",
        "CONFRERE_SERVER_KEY_FILE": str(workdir / "server.key"),
    }
    results: dict[str, dict[str, Any]] = {}
    populations: dict[str, Population] = {}
    try:
        for target in targets:
            target_env = dict(env)
            if target in ("redis", "pg", "pg2"):
                target_env["CONFRERE_BROKER_URL"] = await backends.broker_url()
            if target in ("pg", "pg2"):
                target_env["CONFRERE_DATABASE_URL"] = await backends.database_url()
            url = target_env["CONFRERE_DATABASE_URL"]
            if url not in populations:
                populations[url] = await _populated(args, url, workdir / f"pop{len(populations)}")
            if target == "floor":
                command = (sys.executable, "-m", "loadtest.floor")
                server = Fleet(1, {}, command=command, cpus=cpus)
            else:
                server = Fleet(2 if target == "pg2" else 1, target_env, cpus=cpus)
            try:
                await server.start()
                say(f"{target}: server pids {server.pids}, load average {load_average()}")
                results[target] = await _measure(
                    args, populations[url], server, target, backends.pids()
                )
                results[target]["load_avg_after"] = load_average()
            finally:
                server.close()
    finally:
        backends.close()
    report: dict[str, Any] = dict(results.get("ours") or next(iter(results.values())))
    report["targets"] = list(results)
    report["room_size"] = args.room_size
    report["payload_bytes"] = args.payload
    report["pinned"] = {
        "server_cpu": SERVER_CPU,  # every node
        "generator_cpu": GENERATOR_CPU,  # with the Redis and PostgreSQL bench starts
    }
    for name in ("floor", "redis"):
        if name in results:
            report[name] = results[name]
    report["headline"] = _headline(args, results)
    if "floor" in results and args.saturation:
        floor = results["floor"]
        report["ratio_to_floor"] = round(
            report["deliveries_per_s"] / max(1, floor["deliveries_per_s"]), 3
        )
    if "floor" in results:
        report["rss_ratio_to_floor"] = round(
            report["server_rss_per_conn_kib"]
            / max(0.01, results["floor"]["server_rss_per_conn_kib"]),
            2,
        )
    if "redis" in results and "ours" in results and args.saturation:
        report["redis_ratio_to_memory"] = round(
            results["redis"]["deliveries_per_s"] / max(1, report["deliveries_per_s"]), 3
        )
    for target in ("pg", "pg2"):
        if target in results:
            report[target] = results[target]
            if "ours" in results and report.get("deliveries_per_s"):
                report[f"{target}_ratio_to_embedded"] = round(
                    results[target]["deliveries_per_s"] / report["deliveries_per_s"], 3
                )
    return report


def _headline(args: argparse.Namespace, results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Server CPU per delivery at the fixed rate, each target beside the floor (and the
    Redis broker beside the memory broker): what the server pays for a delivery, which
    does not depend on how fast the floor or the generator happen to run. A target that
    did not keep up (its step failed as a saturation step would: loss, p99 past
    ``--p99-ms``, or under 90% delivered) was measured at its own limit, where a
    saturated server batches more and pays less per delivery: then the ratios at the
    fixed rate are void and are read instead at ``fallback``, the highest rate of the
    saturation search that every target passed."""
    if not args.at:
        return {}
    rows = {name: r["at"] for name, r in results.items() if "at" in r}
    kept_up = {name: bool(row["ok"]) for name, row in rows.items()}
    headline: dict[str, Any] = {
        "offered_per_s": args.at,
        "seconds": args.at_seconds,
        "server_cpu_us_per_delivery": {
            name: row["server_cpu_us_per_delivery"] for name, row in rows.items()
        },
        "kept_up": kept_up,
        "generator_cpu": {name: row["generator_cpu"] for name, row in rows.items()},
        "generator_limited": any(row["generator_cpu"] >= 0.9 for row in rows.values()),
        "void": not all(kept_up.values()),
    }
    if not headline["void"]:
        headline.update(_ratios(headline["server_cpu_us_per_delivery"]))
        return headline
    why = "; ".join(
        f"{_NAMES[name]} did not keep up with {args.at:,.0f}/s ({_stopped_by(rows[name], args)})"
        for name, ok in kept_up.items()
        if not ok
    )
    headline["fallback"] = _fallback(results, why)
    return headline


def _fallback(results: dict[str, dict[str, Any]], why: str) -> dict[str, Any]:
    """CPU per delivery at the highest offered rate of the saturation search that every
    target passed (the searches offer the same rates, ``--start`` x ``--factor``, until
    each one's first failure): a fixed rate all of them carried, measured in the same
    run, one ``--step-seconds`` step each."""
    passed: dict[str, dict[float, dict[str, Any]]] = {
        name: {row["offered_per_s"]: row for row in r.get("steps_table", []) if row["ok"]}
        for name, r in results.items()
    }
    common = set.intersection(*(set(rates) for rates in passed.values())) if passed else set()
    if not common:
        searched = all("steps_table" in r for r in results.values())
        return {
            "offered_per_s": None,
            "why": why
            + (
                "; no rate of the saturation search passed for every target"
                if searched
                else "; no saturation search to fall back on (--no-saturation)"
            ),
        }
    rate = max(common)
    us = {name: rows[rate]["server_cpu_us_per_delivery"] for name, rows in passed.items()}
    return {
        "offered_per_s": rate,
        "why": why + f"; {rate:,.0f}/s is the highest rate of the saturation search every"
        " target passed",
        "server_cpu_us_per_delivery": us,
        "generator_cpu": {name: rows[rate]["generator_cpu"] for name, rows in passed.items()},
        **_ratios(us),
    }


def _ratios(us: dict[str, float]) -> dict[str, float]:
    """The headline's ratios of CPU per delivery, from each target's figure."""
    ratios: dict[str, float] = {}
    if "floor" in us:
        for name in ("ours", "redis"):
            if name in us:
                ratios[f"{name}_to_floor"] = round(us[name] / max(0.01, us["floor"]), 2)
    if "ours" in us and "redis" in us:
        ratios["redis_to_memory"] = round(us["redis"] / max(0.01, us["ours"]), 2)
    for name in ("pg", "pg2"):
        if "ours" in us and name in us:
            ratios[f"{name}_to_embedded"] = round(us[name] / max(0.01, us["ours"]), 2)
    return ratios


_RATIOS = (
    ("ours_to_floor", "ours / floor"),
    ("redis_to_floor", "ours+redis / floor"),
    ("redis_to_memory", "redis / memory broker"),
    ("pg_to_embedded", "pg / ours (nodes only)"),
    ("pg2_to_embedded", "pg2 / ours (nodes only)"),
)


_NAMES = {"ours": "ours", "redis": "ours+redis", "floor": "floor", "pg": "pg", "pg2": "pg2"}


def run(args: argparse.Namespace) -> int:
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="confrere-bench-") as workdir:
        report = asyncio.run(_bench(args, Path(workdir)))
    report["seconds"] = round(time.time() - started, 1)
    print(f"\nbench: rooms of {args.room_size}, {args.payload} B payloads, {report['seconds']} s")
    first = report["targets"][0] if "ours" not in report["targets"] else "ours"
    runs: dict[str, dict[str, Any]] = {
        n: report if n == first else report[n] for n in report["targets"]
    }
    headline = report.get("headline") or {}
    if headline:
        print(f"  server CPU per delivery at {headline['offered_per_s']:,.0f} deliveries/s:")
        for name, us in headline["server_cpu_us_per_delivery"].items():
            at = runs[name]["at"]
            kept = "" if headline["kept_up"][name] else "  (DID NOT KEEP UP)"
            print(
                f"    {_NAMES[name]:<10} {us:>6.2f} us  (delivered {at['delivered_per_s']:,}/s,"
                f" server core {at['server_cpu']:.2f} busy, p99 {at['p99_ms']} ms){kept}"
            )
        for key, text in _RATIOS:
            if key in headline:
                print(f"    {text}: {headline[key]}")
        fallback = headline.get("fallback")
        if fallback is not None:
            print(f"    VOID at {headline['offered_per_s']:,.0f}/s: {fallback['why']}")
            if fallback["offered_per_s"] is not None:
                print(
                    f"  server CPU per delivery at {fallback['offered_per_s']:,.0f} deliveries/s"
                    f" instead (one {args.step_seconds:g} s saturation step each):"
                )
                for name, us in fallback["server_cpu_us_per_delivery"].items():
                    print(f"    {_NAMES[name]:<10} {us:>6.2f} us")
                for key, text in _RATIOS:
                    if key in fallback:
                        print(f"    {text}: {fallback[key]}")
        gen = ", ".join(f"{_NAMES[n]} {c:.2f}" for n, c in headline["generator_cpu"].items())
        limited = "THE LIMIT" if headline["generator_limited"] else "not the limit"
        print(f"    generator core busy: {gen} ({limited})")
    if args.saturation:
        print(f"  saturation (p99 <= {args.p99_ms:g} ms, nothing lost, >= 90% delivered):")
        for name, r in runs.items():
            again = r.get("passed_on_retry") or []
            print(
                f"    {_NAMES[name]:<10} {r['deliveries_per_s']:>9,} deliveries/s at p99"
                f" {r['latency_ms']['p99']} ms; stopped by: {r['stopped_by']}"
                + (
                    f"; passed only when tried again: {', '.join(f'{x:,}/s' for x in again)}"
                    if again
                    else ""
                )
            )
        if "ratio_to_floor" in report:
            print(f"    ours / floor: {report['ratio_to_floor']}")
        if "redis_ratio_to_memory" in report:
            print(f"    redis / memory broker: {report['redis_ratio_to_memory']}")
        for name in ("pg", "pg2"):
            if name in report:
                r = report[name]
                ratio = report.get(f"{name}_ratio_to_embedded", "none (ours passed no step)")
                print(
                    f"    {name} / embedded (SQLite, memory broker): {ratio}; at its"
                    f" saturation, CPU per delivery: nodes {r['server_us_per_delivery']} us"
                    f" (connections per node {r['connections_per_node']}), Redis +"
                    f" PostgreSQL {r['beside_us_per_delivery']} us"
                )
    if args.noisy:
        print("  with a busy neighbour (CPU and disk load on the generator's core):")
        for name, r in runs.items():
            noisy = r["noisy"]
            parts = []
            if "at" in noisy:
                parts.append(f"{noisy['at']['server_cpu_us_per_delivery']:.2f} us/delivery")
            if "deliveries_per_s" in noisy:
                parts.append(
                    f"saturation {noisy['deliveries_per_s']:,}/s,"
                    f" {r['noisy_ratio_to_quiet']} of quiet ({noisy['stopped_by']})"
                )
            print(f"    {_NAMES[name]:<10} " + "; ".join(parts))
    print(
        "  idle memory: "
        + ", ".join(f"{_NAMES[n]} {r['server_rss_per_conn_kib']} KiB" for n, r in runs.items())
        + " per connection"
    )
    print(
        f"  pinned: every node on CPU {SERVER_CPU}; the generator, and the Redis and"
        f" PostgreSQL bench starts, on CPU {GENERATOR_CPU}"
    )
    if args.report:
        page = write_report(args.report, report, "loadtest bench")
        print(f"  report: {args.report}, {page}")
    return 0
