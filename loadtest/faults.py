"""The fault schedule of ``loadtest run --faults``: what breaks, and when.

``--faults kill-node@60,restart-redis@150,restart-postgres@240,stall-client@330``
applies, that many seconds after the load starts:

- ``kill-node``: SIGKILL one node process (its clients reconnect to the others, the
  port keeps listening), started again ``NODE_DOWN_S`` later;
- ``restart-redis``: the broker's redis-server stopped (its data is gone), started
  again ``REDIS_DOWN_S`` later;
- ``restart-postgres``: PostgreSQL stopped at once (``immediate``, as a crash), started
  again ``POSTGRES_DOWN_S`` later (needs ``--start-postgres``: the run owns it);
- ``stall-client``: one connection per generator process stops reading for
  ``STALL_S`` (an app that froze): the node closes it as a slow consumer if its queue
  overflows, and it comes back and catches up by sync.

The run's report lists each fault with when it began and how long it took, and the
checks are the usual ones: nothing acked lost or duplicated, and the longest delivery
gap any reader saw.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Protocol

from .fleet import Fleet, RedisServer
from .workers import WorkerPool

__all__ = ["KINDS", "Fault", "FaultInjector", "parse_faults"]

KINDS = ("kill-node", "restart-redis", "restart-postgres", "stall-client")
NODE_DOWN_S = 5.0
REDIS_DOWN_S = 5.0
POSTGRES_DOWN_S = 5.0
STALL_S = 30.0


class Restartable(Protocol):
    def restart(self, down_s: float = 0.0) -> None: ...


@dataclass(frozen=True, slots=True)
class Fault:
    kind: str
    at_s: float


def parse_faults(text: str) -> list[Fault]:
    """``kind@seconds`` items, comma-separated, in any order."""
    faults = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        kind, _, at = item.partition("@")
        if kind not in KINDS or not at:
            raise ValueError(f"bad fault {item!r}: expected KIND@SECONDS, KIND one of {KINDS}")
        faults.append(Fault(kind, float(at)))
    return sorted(faults, key=lambda f: f.at_s)


class FaultInjector:
    def __init__(
        self,
        fleet: Fleet | None,
        redis: RedisServer | None,
        postgres: Restartable | None,
        pool: WorkerPool,
    ) -> None:
        self.fleet, self.redis, self.postgres, self.pool = fleet, redis, postgres, pool
        self.log: list[dict[str, Any]] = []

    def check(self, faults: list[Fault]) -> None:
        """Refuse a schedule this run cannot apply (before any load starts)."""
        kinds = {f.kind for f in faults}
        if "kill-node" in kinds and (self.fleet is None or len(self.fleet.procs) < 2):
            raise SystemExit("kill-node needs at least two nodes started by the run (--nodes 2)")
        if "restart-redis" in kinds and self.redis is None:
            raise SystemExit("restart-redis needs the run's own Redis (no --url)")
        if "restart-postgres" in kinds and self.postgres is None:
            raise SystemExit("restart-postgres needs --start-postgres")

    async def apply(self, fault: Fault, since_start_s: float) -> None:
        began = time.monotonic()
        detail = ""
        if fault.kind == "kill-node":
            assert self.fleet is not None
            self.fleet.kill(0)
            await asyncio.sleep(NODE_DOWN_S)
            self.fleet.respawn(0)
        elif fault.kind == "restart-redis":
            assert self.redis is not None
            await self.redis.restart(REDIS_DOWN_S)
        elif fault.kind == "restart-postgres":
            assert self.postgres is not None
            await asyncio.to_thread(self.postgres.restart, POSTGRES_DOWN_S)
        elif fault.kind == "stall-client":
            stalled = await self.pool.call("stall", seconds=STALL_S)
            detail = f"{sum(1 for s in stalled if s['ok'])} connection(s) for {STALL_S:.0f} s"
            await asyncio.sleep(STALL_S)
        self.log.append(
            {
                "kind": fault.kind,
                "at_s": round(since_start_s, 1),
                "took_s": round(time.monotonic() - began, 1),
                "detail": detail,
            }
        )
