"""Load-generator worker processes, driven from the coordinating command over pipes.

Each worker holds up to ~19,000 connections (this machine caps a process at 20,000
open files) from source addresses 127.0.0.x of its own, at most ``PER_SOURCE_IP``
connections on each. Not one address per worker: picows binds ``(ip, 0)`` before
connecting, and Linux gives ``bind`` port 0 only half of the ~28,000 ephemeral ports,
searched linearly; past ~14,000 on one address every connect burns milliseconds of
kernel time (at 400,000 connections that stalled the whole machine at ~325,000).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
from multiprocessing.connection import Connection
from typing import Any

from .gen import GenConfig, Generator, UserSpec

__all__ = ["WorkerPool"]


def _worker(
    pipe: Connection, config: GenConfig, users: list[UserSpec], cpus: set[int] | None
) -> None:
    if cpus:
        os.sched_setaffinity(0, cpus)
    try:
        import uvloop

        uvloop.run(_serve(pipe, config, users))
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        asyncio.run(_serve(pipe, config, users))


async def _serve(pipe: Connection, config: GenConfig, users: list[UserSpec]) -> None:
    import logging

    logging.getLogger("picows").setLevel(logging.CRITICAL)
    gen = Generator(config, users)
    loop = asyncio.get_running_loop()
    background: set[asyncio.Task[Any]] = set()
    while True:
        # A thread reads the pipe, which stays blocking: snapshots of many connections
        # are larger than the pipe's buffer.
        try:
            cmd: dict[str, Any] = await asyncio.to_thread(pipe.recv)
        except EOFError:
            cmd = {"op": "close"}
        op = cmd["op"]
        if op == "connect":
            task = loop.create_task(gen.connect_all())
            background.add(task)
            pipe.send({"ok": True})
        elif op == "rate":
            gen.set_rate(float(cmd["rate"]), int(cmd.get("step", 0)))
            pipe.send({"ok": True})
        elif op == "read_all":
            gen.config.read_all = bool(cmd["on"])
            pipe.send({"ok": True})
        elif op == "churn":
            gen.set_churn(float(cmd["per_min"]))
            pipe.send({"ok": True})
        elif op == "stall":
            pipe.send({"ok": gen.stall(float(cmd["seconds"]))})
        elif op == "snapshot":
            pipe.send(gen.snapshot(bool(cmd.get("full"))))
        elif op == "close":
            await gen.close_all()
            with contextlib.suppress(OSError, BrokenPipeError):
                pipe.send({"ok": True})
            return


PER_SOURCE_IP = 8_000  # connections per source address (see the module docstring)


class WorkerPool:
    """``processes`` workers sharing ``users`` round-robin; each uses its own source
    addresses ``ip_base.N`` (``ip_base`` like "127.0.0"), N from 2 up."""

    def __init__(
        self,
        config: GenConfig,
        users: list[UserSpec],
        processes: int,
        *,
        ip_base: str = "127.0.0",
        cpus: set[int] | None = None,
    ) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.pipes: list[Connection] = []
        self._calls = asyncio.Lock()  # one request per pipe at a time: replies in order
        self.procs: list[Any] = []
        processes = max(1, min(processes, len(users) or 1))
        self.sizes: list[int] = []
        per_worker = -(-len(users) // processes)
        ips_each = max(1, -(-per_worker // PER_SOURCE_IP))
        if 2 + processes * ips_each > 255:
            raise ValueError(f"{processes} workers need more addresses than {ip_base}.x has")
        for k in range(processes):
            mine = users[k::processes]
            cfg = GenConfig(**{f: getattr(config, f) for f in config.__slots__})
            first = 2 + k * ips_each
            cfg.source_ips = tuple(f"{ip_base}.{first + j}" for j in range(ips_each))
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker, args=(child, cfg, mine, cpus), daemon=True)
            self.pipes.append(parent)
            self.procs.append(proc)
            self.sizes.append(len(mine))

    @property
    def total(self) -> int:
        return sum(self.sizes)

    def start(self) -> None:
        for proc in self.procs:
            proc.start()

    async def call(self, op: str, **args: Any) -> list[dict[str, Any]]:
        def one(pipe: Connection) -> dict[str, Any]:
            pipe.send({"op": op, **args})
            reply: dict[str, Any] = pipe.recv()
            return reply

        async with self._calls:
            return list(await asyncio.gather(*(asyncio.to_thread(one, p) for p in self.pipes)))

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.call("close"), 20)
        for proc in self.procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join()
