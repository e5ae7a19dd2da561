"""Pieces shared by ``idle``, ``run`` and ``bench``."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .gen import UserSpec
from .popfile import Population
from .progress import Progress, status
from .workers import WorkerPool

__all__ = [
    "CoreGroup",
    "CoreSample",
    "FILES_PER_PROCESS",
    "cpu_seconds",
    "load_average",
    "steal_ticks",
    "quiesce",
    "user_specs",
    "wait_connected",
    "ws_url",
]

# This machine caps every process at 20,000 open files; leave room for the rest.
FILES_PER_PROCESS = 19_000


def ws_url(http_url: str) -> str:
    return "ws" + http_url.removeprefix("http").rstrip("/") + "/v1/ws"


def user_specs(population: Population, numbers: Sequence[int]) -> list[UserSpec]:
    mine = population.rooms_by_user()
    return [
        UserSpec(
            population.users[n][0],
            population.users[n][1],
            population.users[n][2],
            tuple(population.rooms[r][0] for r in mine[n]),
        )
        for n in numbers
    ]


def _stat_cpu_s(path: str) -> float:
    """User + system CPU seconds from a /proc stat file (process or thread)."""
    try:
        with open(path) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), seconds."""
    return _stat_cpu_s(f"/proc/{pid}/stat")


def _waited_s(pid: int) -> float:
    """Seconds the process's main thread spent runnable but not running (cumulative)."""
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


@dataclass(frozen=True, slots=True)
class CoreSample:
    cpu: float  # the leaders' CPU seconds (all their threads)
    beside_cpu: float  # the other members' CPU seconds
    stolen: tuple[float, ...]  # per leader: see CoreGroup


class CoreGroup:
    """Processes pinned together to one core: ``leaders`` (the nodes, or the load
    generator) and ``beside`` them (a Redis, a PostgreSQL's processes).

    A leader's stolen time is the time its main thread waited for the core while some
    other process held it: its run-queue wait, less the CPU the group used meanwhile
    (a node's SQLite thread, a second node, the Redis beside the generator make it wait
    too, which is the configuration's own cost, not contention). Cumulative: take
    differences with :meth:`since`."""

    def __init__(self, leaders: Sequence[int], beside: Sequence[int] = ()) -> None:
        self.leaders = list(leaders)
        self.beside = list(beside)

    def sample(self) -> CoreSample:
        cpu = sum(cpu_seconds(p) for p in self.leaders)
        beside_cpu = sum(cpu_seconds(p) for p in self.beside)
        group = cpu + beside_cpu
        stolen = tuple(
            _waited_s(p) - (group - _stat_cpu_s(f"/proc/{p}/task/{p}/stat")) for p in self.leaders
        )
        return CoreSample(cpu, beside_cpu, stolen)

    def since(self, before: CoreSample, wall_s: float) -> tuple[float, float, float]:
        """Shares of a core since ``before``: the leaders' CPU, the others' CPU, and the
        largest share any leader's core was held by processes outside the group."""
        now = self.sample()
        stolen = max((b - a for a, b in zip(before.stolen, now.stolen, strict=True)), default=0)
        return (
            (now.cpu - before.cpu) / wall_s,
            (now.beside_cpu - before.beside_cpu) / wall_s,
            max(0.0, stolen) / wall_s,
        )


def steal_ticks() -> dict[int, tuple[int, int]]:
    """Per CPU, (ticks stolen by the hypervisor, all ticks) since boot (/proc/stat):
    on a virtual machine, time the core ran another guest. Take differences."""
    ticks: dict[int, tuple[int, int]] = {}
    try:
        with open("/proc/stat") as f:
            for line in f:
                name, *values = line.split()
                if name.startswith("cpu") and name != "cpu":
                    numbers = [int(v) for v in values]
                    steal = numbers[7] if len(numbers) > 7 else 0
                    ticks[int(name[3:])] = (steal, sum(numbers[:8]))
    except (OSError, ValueError):
        pass
    return ticks


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


async def wait_connected(
    pool: WorkerPool, label: str, timeout_s: float | None = None
) -> tuple[dict[str, int], float]:
    """Open every worker's connections; show progress; return the summed counters
    (connections, connect_failures) and the seconds it took. Gives up waiting after
    ``timeout_s`` (default: 900 s, or 20 ms per connection if longer)."""
    timeout_s = timeout_s or max(900.0, pool.total * 0.02)
    started = time.perf_counter()
    await pool.call("connect")
    bar = Progress(label, pool.total)
    snaps: list[dict[str, Any]] = []
    while time.perf_counter() - started < timeout_s:
        snaps = await pool.call("snapshot")
        conns = sum(s["connections"] for s in snaps)
        failed = sum(s["connect_failures"] for s in snaps)
        dropped = sum(s["disconnects"] for s in snaps)
        codes: dict[str, int] = {}
        for s in snaps:
            for code, n in s["close_codes"].items():
                codes[code] = codes.get(code, 0) + n
        bar.update(conns + failed, f"failed {failed}, dropped {dropped} (server codes {codes})")
        if conns + failed >= pool.total:
            break
        await asyncio.sleep(0.25)
    bar.done()
    elapsed = time.perf_counter() - started
    return {
        "connections": sum(s["connections"] for s in snaps),
        "connect_failures": sum(s["connect_failures"] for s in snaps),
    }, elapsed


async def quiesce(pool: WorkerPool, connections: int, timeout_s: float = 60.0) -> None:
    """Once the offered load stopped: wait until ``connections`` are open, no room is
    being synced, every send is answered, and nothing new arrived for 2 s (at most
    ``timeout_s``); else what is in flight would count as lost."""
    deadline, last_seen, stable_since = time.time() + timeout_s, -1, time.time()
    while time.time() < deadline:
        await asyncio.sleep(0.5)
        snaps = await pool.call("snapshot")
        back = sum(s["connections"] for s in snaps)
        syncing = sum(s["syncing"] for s in snaps)
        unanswered = sum(s["sent"] - s["acked"] - s["errors"] for s in snaps)
        seen = sum(s["delivered"] + s["caught_up"] + s["acked"] for s in snaps)
        if seen != last_seen or back < connections or syncing or unanswered > 0:
            last_seen, stable_since = seen, time.time()
        elif time.time() - stable_since >= 2.0:
            return


def say(line: str) -> None:
    status(line + "\n")


def node_env(database_url: str, broker_url: str, workdir: str) -> dict[str, str]:
    """Settings of the nodes a load test starts itself. The hello timeout is raised:
    during a connection storm of tens of thousands, a hello can wait in the accept
    queue longer than the default 5 s, which would measure the storm, not the node."""
    env = {
        "CONFRERE_DATABASE_URL": database_url,
        "CONFRERE_BROKER_URL": broker_url,
        # "transaction took N ms" warnings flood during connection storms.
        "CONFRERE_LOG_LEVEL": "error",
        "CONFRERE_HELLO_TIMEOUT_S": "60",
    }
    if not database_url.startswith("sqlite"):
        env["CONFRERE_SERVER_KEY_FILE"] = f"{workdir}/server.key"
        env["CONFRERE_BLOB_URL"] = f"file://{workdir}/blobs"
    return env
