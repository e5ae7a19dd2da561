"""Each ``python -m loadtest`` subcommand at a tiny scale, end to end over real sockets,
asserting the report's loss and duplicate accounting (never timing)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Each test runs several nodes and generator processes, which measure themselves (CPU
# and memory per delivery): under xdist they take turns on one worker, not two at once.
pytestmark = pytest.mark.xdist_group("loadtest")


def loadtest(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONFRERE_")}
    return subprocess.run(
        [sys.executable, "-m", "loadtest", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def read_report(path: Path) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(path.read_text())
    assert path.with_suffix(".html").exists()
    return report


@pytest.fixture
def population(tmp_path: Path) -> Path:
    out = tmp_path / "population.msgpack"
    done = loadtest(
        "populate",
        "--users",
        "40",
        "--database-url",
        f"sqlite:///{tmp_path / 'lt.db'}",
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    return out


def test_bench_reports_ours_beside_the_floor(tmp_path: Path) -> None:
    report_path = tmp_path / "bench.json"
    done = loadtest(
        "bench",
        "--connections",
        "30",
        "--room-size",
        "5",
        "--start",
        "100",
        "--factor",
        "2",
        "--step-seconds",
        "1",
        "--max-steps",
        "2",
        "--targets",
        "ours,floor",
        "--at",
        "200",
        "--at-seconds",
        "1",
        "--noisy",
        "--report",
        str(report_path),
    )
    assert done.returncode == 0, done.stderr
    report = read_report(report_path)
    for run in (report, report["floor"]):
        assert run["connections"] == 30
        assert run["sent"] > 0 and run["acked"] == run["sent"]
        assert run["delivered"] == run["expected"] == run["sent"] * 4
        assert run["lost"] == 0 and run["duplicates"] == 0 and run["out_of_order"] == 0
        assert set(run["latency_ms"]) == {"p50", "p90", "p99", "max"}
        assert "server_rss_per_conn_kib" in run and "deliveries_per_s" in run
        # The headline's fixed rate, measured quiet and beside the busy neighbour.
        for at in (run["at"], run["noisy"]["at"]):
            assert at["offered_per_s"] == 200 and at["lost"] == 0
            assert at["server_cpu_us_per_delivery"] > 0
        assert run["noisy"]["steps_table"] and "noisy_ratio_to_quiet" in run
        # What could stall a step besides the server, reported for each.
        for row in run["steps_table"]:
            assert 0 <= row["server_core_steal"] <= 1 and 0 <= row["generator_core_steal"] <= 1
            assert row["generator_lag_max_ms"] >= 0 and row["generator_gc_ms"] >= 0
        assert isinstance(run["passed_on_retry"], list)
    headline = report["headline"]
    assert set(headline["server_cpu_us_per_delivery"]) == {"ours", "floor"}
    assert headline["ours_to_floor"] > 0
    assert "ratio_to_floor" in report
    assert "server CPU per delivery at 200 deliveries/s" in done.stdout


async def test_bench_on_postgres_and_redis_one_node_and_two(
    postgres_database: str, redis_url: str, tmp_path: Path
) -> None:
    report_path = tmp_path / "bench.json"
    done = await asyncio.to_thread(
        loadtest,
        "bench",
        *("--connections", "30", "--room-size", "5", "--start", "100", "--factor", "2"),
        *("--step-seconds", "1", "--max-steps", "2", "--refine", "0"),
        *("--at", "200", "--at-seconds", "1"),
        *("--database-url", postgres_database, "--broker-url", redis_url),
        *("--targets", "ours,pg,pg2", "--report", str(report_path)),
    )
    assert done.returncode == 0, done.stderr
    report = read_report(report_path)
    for name in ("pg", "pg2"):
        run = report[name]
        assert run["connections"] == 30
        assert run["sent"] > 0 and run["acked"] == run["sent"]
        assert run["delivered"] == run["expected"] == run["sent"] * 4
        assert run["lost"] == 0 and run["duplicates"] == 0
        # Beside ours (SQLite, memory broker), when that passed a step (a busy machine
        # can fail even these tiny steps on latency).
        assert (f"{name}_ratio_to_embedded" in report) == (report["deliveries_per_s"] > 0)
    assert report["pg"]["out_of_order"] == 0  # one node: none may cross
    assert report["pg"]["nodes"] == 1 and report["pg2"]["nodes"] == 2
    # SO_REUSEPORT spread the connections over both nodes: the rooms span them.
    per_node = report["pg2"]["connections_per_node"]
    assert sum(per_node) == 30 and min(per_node) > 0


def test_idle_holds_connections_over_several_nodes(population: Path, tmp_path: Path) -> None:
    report_path = tmp_path / "idle.json"
    done = loadtest(
        "idle",
        "--population",
        str(population),
        "--per-process",
        "15",  # 40 connections: three nodes on one port, three generator processes
        "--hold",
        "3",
        "--trickle",
        "20",
        "--floor-hold",
        "1",
        "--report",
        str(report_path),
    )
    assert done.returncode == 0, done.stderr
    report = read_report(report_path)
    assert report["server_processes"] == 3
    assert report["connections"] == 40 and report["disconnects"] == 0
    assert report["sent"] > 0 and report["delivered"] > 0  # across nodes, through Redis
    assert report["lost"] == 0 and report["duplicates"] == 0
    assert report["delivered"] == report["expected"]
    assert report["floor"]["connections"] == 40
    assert "rss_ratio_to_floor" in report
    for run in (report, report["floor"]):  # hello + welcome included, both sides
        assert run["connect_per_s"] > 0 and run["server_cpu_us_per_connect"] > 0
    assert report["connect_ratio_to_floor"] > 0


def test_storm_brings_every_client_of_a_killed_node_back_without_loss(
    population: Path, tmp_path: Path
) -> None:
    report_path = tmp_path / "storm.json"
    done = loadtest(
        "storm",
        "--population",
        str(population),
        "--clients",
        "40",
        "--nodes",
        "2",
        "--per-process",
        "20",  # two generator processes
        "--before",
        "1",
        "--after",
        "1",
        "--trickle",
        "20",
        "--report",
        str(report_path),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = read_report(report_path)
    assert report["connections"] == 40 and report["generator_processes"] == 2
    # The kernel spreads the 40 over both nodes: the killed one had some of them.
    assert 0 < report["clients_of_killed_node"] < 40
    assert report["reconnected"] == report["clients_of_killed_node"]
    assert report["failed_reconnections"] == 0 and report["all_back"]
    assert report["sent"] > 0 and report["acked"] == report["sent"]
    assert report["lost"] == 0 and report["duplicates"] == 0
    assert report["delivered"] + report["caught_up"] == report["expected"]
    assert report["storm_s"] > 0 and report["storm_connect_per_s"] > 0


def test_run_checks_every_delivery_through_churn(population: Path, tmp_path: Path) -> None:
    report_path = tmp_path / "run.json"
    done = loadtest(
        "run",
        "--population",
        str(population),
        "--online",
        "1",
        "--rate",
        "40",
        "--duration",
        "6",
        "--churn",
        "4",  # most connections drop and resume at least once
        "--read-all",  # every delivery read, at most one receipt per room per second
        "--per-process",
        "15",
        "--report",
        str(report_path),
    )
    assert done.returncode == 0, done.stderr
    report = read_report(report_path)
    assert report["connections"] == 40
    assert report["churned"] > 0
    # A send whose connection dropped before its ack is sent again after resuming, with
    # the same cid (as the SDK does), and then acked with its original seq.
    assert report["acked"] == report["sent"]
    # Several nodes (40 online, 15 per node): arrivals may cross between nodes, so
    # out-of-order arrivals are not counted against it (bench checks them on one node).
    assert report["lost"] == 0 and report["duplicates"] == 0
    assert report["expected"] == report["delivered"] + report["caught_up_by_sync"]
    assert report["ephemeral_received"] > 0  # read receipts and typing went through
    # Receipts in flight when a connection dropped are sent again after it resumed.
    assert report["receipts_sent"] > 0 and report["receipts_acked"] == report["receipts_sent"]


def test_run_receipts_cost_searches_without_then_with_receipts(
    population: Path, tmp_path: Path
) -> None:
    report_path = tmp_path / "run.json"
    done = loadtest(
        "run",
        "--population",
        str(population),
        "--online",
        "1",
        "--receipts-cost",
        "--rate",
        "20",
        "--step-seconds",
        "1",
        "--max-steps",
        "2",
        "--p99-ms",
        "100000",  # no step fails on latency here: the test is about the accounting
        "--report",
        str(report_path),
    )
    assert done.returncode == 0, done.stderr
    report = read_report(report_path)
    cost = report["receipts_cost"]
    without, read_all = cost["without"]["steps_table"], cost["read_all"]["steps_table"]
    assert [r["offered_sends_per_s"] for r in without] == [20, 28]
    assert [r["offered_sends_per_s"] for r in read_all] == [20, 28]
    assert all(r["receipts"] == 0 for r in without)
    for row in without + read_all:
        assert row["sent"] > 0 and row["acked"] == row["sent"] and row["lost"] == 0
    for row in read_all:
        assert row["receipts"] > 0 and row["receipts_acked"] == row["receipts"]
        # The node's counters: group commit takes at most one transaction per receipt.
        assert 0 < row["receipt_commits"] <= row["receipts"]
    for row in without + read_all:
        assert 0 < row["message_commits"] <= row["sent"]
    assert "sends_ratio" in cost and "cpu_at_equal_load" in cost
    assert report["receipts_sent"] == report["receipts_acked"] > 0
    assert report["lost"] == 0 and report["duplicates"] == 0
