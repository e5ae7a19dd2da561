"""``loadtest run --receipts-cost``: sustained sends/s without read receipts and with
every delivery read, on the same nodes and connections, and the ratio.

Sustained sends/s is the highest offered send rate at which a step of
``--step-seconds`` keeps up: every send of the step acked and every receipt acked
(within 5 s of the step's end), nothing lost so far, no connection dropped, p99
delivery latency at most ``--p99-ms``, and at least 90% of the offered sends sent (else
the generator was the limit); a step that fails is tried again (``--retries``: these
machines are shared). The offered rate starts at ``--rate`` and steps up like
``bench`` (x ``--factor`` until a step fails, then ``--refine`` bisections; down by
``--factor`` if the first fails). The search runs first without receipts, then again
with ``read_all`` (each connection receipts each room it got deliveries in, up to the
highest, at most once per room per second, as the web client does). Churn is off
during both. Each step also records the nodes' CPU seconds per send (the two
searches offer the same rates until one fails, so at the highest rate both passed the
CPU cost of receipts is measured at equal load, less noisy than saturation) and, on
one node, how many transactions its messages and its receipts took (the node's
``/metrics``).
"""

from __future__ import annotations

import argparse
import asyncio
import time
import urllib.request
from collections.abc import Sequence
from typing import Any

from .bench import RateSearch
from .common import CoreGroup, load_average, say
from .gen import hist_add
from .progress import status
from .report import hist_percentiles, merge
from .workers import WorkerPool

__all__ = ["add_arguments", "measure_receipts_cost"]

DRAIN_S = 5.0
# Group commits of messages and of receipts, from the node's /metrics (one node).
COMMITS = ("confrere_commit_seconds_count", "confrere_receipts_commit_seconds_count")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--receipts-cost",
        action="store_true",
        help="sustained sends/s without receipts and with every delivery read (--rate: first step)",
    )
    parser.add_argument("--step-seconds", type=float, default=5.0, help="with --receipts-cost")
    parser.add_argument("--factor", type=float, default=1.4, help="with --receipts-cost")
    parser.add_argument("--max-steps", type=int, default=16, help="with --receipts-cost")
    parser.add_argument("--refine", type=int, default=3, help="with --receipts-cost")
    parser.add_argument("--p99-ms", type=float, default=100.0, help="with --receipts-cost")
    parser.add_argument("--retries", type=int, default=1, help="repeats of a failed step")


def _commits(url: str | None) -> dict[str, int] | None:
    """The node's transaction counters, or None (no URL, or a node without them)."""
    if url is None:
        return None
    try:
        with urllib.request.urlopen(f"{url}/metrics", timeout=5) as reply:
            lines = reply.read().decode().splitlines()
    except OSError:
        return None
    found = dict(line.split(" ", 1) for line in lines if line.startswith(COMMITS))
    return {name: int(float(found[name])) for name in COMMITS if name in found}


def _sum(snaps: Sequence[dict[str, Any]], key: str) -> int:
    return sum(int(s[key]) for s in snaps)


def _step_counts(snaps: Sequence[dict[str, Any]], k: int) -> tuple[int, int, int]:
    sent = acked = delivered = 0
    for s in snaps:
        a, b, c = s["steps"].get(k, (0, 0, 0))
        sent, acked, delivered = sent + a, acked + b, delivered + c
    return sent, acked, delivered


async def _step(
    pool: WorkerPool,
    server_pids: list[int],
    metrics_url: str | None,
    args: argparse.Namespace,
    k: int,
    rate: float,
) -> dict[str, Any]:
    """Offer ``rate`` sends/s for one step, drain, and account for it."""
    before = await pool.call("snapshot")
    commits0 = await asyncio.to_thread(_commits, metrics_url)
    load = load_average()
    # Each node and each worker of the generator: the largest share of a core any of
    # them waited for while another process held it.
    cores = [CoreGroup([p]) for p in [*server_pids, *pool.pids]]
    before_step = [core.sample() for core in cores]
    servers = cores[: len(server_pids)]
    t0 = time.time()
    await pool.call("rate", rate=rate / len(pool.procs), step=k)
    while time.time() - t0 < args.step_seconds:
        await asyncio.sleep(0.5)
        snaps = await pool.call("snapshot")
        status(
            f"step {k}: offered {rate:,.0f} sends/s, sent {_step_counts(snaps, k)[0]:,},"
            f" receipts {_sum(snaps, 'reads_sent') - _sum(before, 'reads_sent'):,}"
        )
    await pool.call("rate", rate=0, step=k)
    wall = time.time() - t0
    stolen = max(core.since(s0, wall)[2] for core, s0 in zip(cores, before_step, strict=True))
    # Drain: the step's sends and receipts acked and every delivery in, or given up on.
    deadline = time.time() + DRAIN_S
    while True:
        snaps = await pool.call("snapshot", full=True)
        total = merge(snaps)
        sent, acked, delivered = _step_counts(snaps, k)
        settled = (
            acked == sent
            and total["reads_held"] == 0
            and total["reads_acked"] == total["reads_sent"]
        )
        if (settled and total["lost"] == 0) or time.time() > deadline:
            break
        await asyncio.sleep(0.1)
    cpu = sum(core.sample().cpu - s0.cpu for core, s0 in zip(servers, before_step, strict=False))
    commits1 = await asyncio.to_thread(_commits, metrics_url)
    hist: dict[int, int] = {}
    for s in snaps:
        hist_add(hist, s["step_hists"].get(k, {}))
    lat = hist_percentiles(hist)
    reads = _sum(snaps, "reads_sent") - _sum(before, "reads_sent")
    reads_acked = _sum(snaps, "reads_acked") - _sum(before, "reads_acked")
    dropped = _sum(snaps, "disconnects") - _sum(before, "disconnects")
    row = {
        "step": k,
        "offered_sends_per_s": round(rate),
        "sent_per_s": round(sent / args.step_seconds),
        "sent": sent,
        "acked": acked,
        "delivered": delivered,
        "receipts": reads,
        "receipts_acked": reads_acked,
        "lost": total["lost"],
        "dropped": dropped,
        "p50_ms": lat["p50"],
        "p99_ms": lat["p99"],
        "server_cpu": round(cpu / wall, 2),
        "server_cpu_us_per_send": round(cpu / max(1, sent) * 1e6, 1),
        "cpu_stolen": round(stolen, 2),
        "load_avg": load,
    }
    if commits0 is not None and commits1 is not None:
        # How many transactions the step's sends and receipts took (group commit).
        row["message_commits"] = commits1[COMMITS[0]] - commits0[COMMITS[0]]
        if COMMITS[1] in commits0:
            row["receipt_commits"] = commits1[COMMITS[1]] - commits0[COMMITS[1]]
    failures = []
    if acked < sent or total["reads_acked"] < total["reads_sent"]:
        failures.append("unacked")
    if total["lost"]:
        failures.append(f"lost {total['lost']}")
    if dropped:
        failures.append(f"{dropped} dropped")
    if lat["p99"] > args.p99_ms:
        failures.append(f"p99 {lat['p99']} ms > {args.p99_ms} ms")
    if sent < 0.9 * rate * args.step_seconds:
        failures.append("generator sent < 90% of offered")
    row["failed"] = ", ".join(failures)
    return row


async def _search(
    pool: WorkerPool,
    server_pids: list[int],
    metrics_url: str | None,
    args: argparse.Namespace,
    label: str,
    k: int,
) -> tuple[dict[str, Any], int]:
    """Step the offered rate up, then bisect; the search's result and its last step."""
    search = RateSearch(args.rate, args.factor, args.max_steps, args.refine, descend=True)
    rate: float | None = search.rate
    steps: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    failure: dict[str, Any] | None = None
    retries = 0
    while rate is not None:
        k += 1
        row = await _step(pool, server_pids, metrics_url, args, k, rate)
        steps.append(row)
        ok = not row["failed"]
        say(
            f"{label} step {k}: offered {rate:>8,.0f} sends/s, sent {row['sent_per_s']:>8,}/s,"
            f" {row['receipts']:,} receipts"
            f" ({row.get('receipt_commits', '?')} transactions), p99 {row['p99_ms']} ms, server cpu"
            f" {row['server_cpu']} ({row['server_cpu_us_per_send']} us/send), held by"
            f" others {row['cpu_stolen']}: {'ok' if ok else 'FAIL ' + row['failed']}"
        )
        if not ok and retries < args.retries:
            # On a shared machine a step can fail for a neighbour's burst of CPU or
            # disk: a rate fails only if it fails every time.
            retries += 1
            say(f"{label} step {k}: trying the same rate again")
            continue
        retries = 0
        if ok:
            best = row
        else:
            failure = row
        rate = search.record(ok)
    return {
        "sustained_sends_per_s": best["offered_sends_per_s"] if best else 0,
        "at_sustained": best,
        "stopped_by": failure["failed"] if failure else "max steps",
        "steps_table": steps,
    }, k


def _cpu_at_equal_load(without: dict[str, Any], with_: dict[str, Any]) -> dict[str, Any] | None:
    """Server CPU per send at the highest offered rate that both searches passed."""
    passed = {r["offered_sends_per_s"]: r for r in without["steps_table"] if not r["failed"]}
    common = [
        r for r in with_["steps_table"] if not r["failed"] and r["offered_sends_per_s"] in passed
    ]
    if not common:
        return None
    best = max(common, key=lambda r: r["offered_sends_per_s"])
    base = passed[best["offered_sends_per_s"]]
    return {
        "offered_sends_per_s": best["offered_sends_per_s"],
        "without_us_per_send": base["server_cpu_us_per_send"],
        "with_us_per_send": best["server_cpu_us_per_send"],
        "ratio": round(
            best["server_cpu_us_per_send"] / max(0.1, base["server_cpu_us_per_send"]), 3
        ),
    }


async def measure_receipts_cost(
    pool: WorkerPool, server_pids: list[int], url: str, args: argparse.Namespace
) -> dict[str, Any]:
    """``server_pids``: the nodes to take CPU time of (none: a deployment elsewhere)."""
    metrics_url = url if len(server_pids) == 1 else None
    say(f"receipts-cost: without receipts, load average {load_average()}")
    without, k = await _search(pool, server_pids, metrics_url, args, "without receipts", 0)
    await pool.call("read_all", on=True)
    say(f"receipts-cost: every delivery read, load average {load_average()}")
    with_, _ = await _search(pool, server_pids, metrics_url, args, "read-all", k)
    await pool.call("read_all", on=False)
    ratio = with_["sustained_sends_per_s"] / max(1, without["sustained_sends_per_s"])
    return {
        "without": without,
        "read_all": with_,
        "sends_ratio": round(ratio, 3),
        "cost": round(1 - ratio, 3),
        "cpu_at_equal_load": _cpu_at_equal_load(without, with_),
    }
