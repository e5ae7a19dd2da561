"""The servers a load test starts and stops itself: a fleet of node processes sharing
one port (SO_REUSEPORT: the kernel spreads connections over them, as it does over a
production node's worker processes), the Redis that fans out between them, and their
memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

from .server_process import ROOT

__all__ = ["Fleet", "RedisServer", "rss_kib"]


def rss_kib(pid: int) -> int:
    """Resident set size of a process, KiB (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _established_inodes(port: int) -> set[str]:
    """``socket:[inode]`` of every established IPv4 TCP connection to local ``port``."""
    found: set[str] = set()
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if fields[3] == "01" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                found.add(f"socket:[{fields[9]}]")
    return found


def reuseport_sockets(count: int, host: str = "127.0.0.1") -> list[socket.socket]:
    """``count`` listening sockets on one free port, each for one process."""
    socks: list[socket.socket] = []
    port = 0
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        port = sock.getsockname()[1]
        sock.listen(4096)
        sock.set_inheritable(True)
        socks.append(sock)
    return socks


class Fleet:
    """``count`` processes serving one port. ``command`` gets ``--fd N`` appended;
    default: a Confrère node (``python -m server run``)."""

    def __init__(
        self,
        count: int,
        env: Mapping[str, str],
        *,
        command: Sequence[str] = (sys.executable, "-m", "server", "run"),
        cpus: Sequence[int] | None = None,
        ready_path: str = "/readyz",
    ) -> None:
        self.socks = reuseport_sockets(count)
        self.port = self.socks[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = dict(env)
        self.command = list(command)
        self.cpus = list(cpus) if cpus else None
        self.ready_path = ready_path
        self.procs: list[subprocess.Popen[bytes]] = []

    def spawn(self) -> None:
        self.procs = [self._process(sock) for sock in self.socks]

    def _process(self, sock: socket.socket) -> subprocess.Popen[bytes]:
        prefix = ["taskset", "-c", ",".join(map(str, self.cpus))] if self.cpus else []
        fd = sock.fileno()
        return subprocess.Popen(
            [*prefix, *self.command, "--fd", str(fd)],
            cwd=ROOT,
            env={**os.environ, **self.env},
            pass_fds=(fd,),
        )

    def kill(self, index: int) -> None:
        """SIGKILL process ``index``, as a crash or an OOM kill would."""
        proc = self.procs[index]
        proc.kill()
        proc.wait()

    def retire(self, index: int) -> None:
        """SIGKILL process ``index`` for good and close its listening socket (ours kept
        it open for a respawn): the kernel then spreads the port's connections over
        the other processes alone, as a load balancer does once a node is gone."""
        self.kill(index)
        self.socks[index].close()

    def respawn(self, index: int) -> None:
        """Start process ``index`` again on its socket (the port kept listening)."""
        self.procs[index] = self._process(self.socks[index])

    async def start(self) -> None:
        """Spawn the processes; return once the port answers and none has exited.
        (SO_REUSEPORT picks the process per connection, so readiness is probed a few
        times over, then a short grace lets the slowest finish its start-up.)"""
        self.spawn()
        async with httpx.AsyncClient(base_url=self.url) as http:
            ready = 0
            for _ in range(3000):
                for proc in self.procs:
                    if proc.poll() is not None:
                        raise RuntimeError(f"server exited with {proc.returncode}")
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get(self.ready_path)).status_code == 200:
                        ready += 1
                        if ready >= 4 * len(self.procs):
                            break
                await asyncio.sleep(0.02)
            else:
                raise RuntimeError("servers did not become ready in 60 s")
        await asyncio.sleep(0.5)  # the slowest worker finishes its start-up

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def rss_kib(self) -> int:
        return sum(rss_kib(pid) for pid in self.pids)

    def connections(self) -> list[int]:
        """Established TCP connections each process holds on the fleet's port (where
        SO_REUSEPORT put the clients)."""
        ours = _established_inodes(self.port)
        counts = []
        for pid in self.pids:
            fds = f"/proc/{pid}/fd"
            try:
                links = [os.readlink(f"{fds}/{fd}") for fd in os.listdir(fds)]
            except OSError:
                links = []
            counts.append(sum(1 for link in links if link in ours))
        return counts

    def alive(self) -> int:
        return sum(1 for p in self.procs if p.poll() is None)

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for sock in self.socks:
            sock.close()


class RedisServer:
    """A throwaway redis-server on a unix socket, no persistence; pinned to ``cpus``
    when given."""

    def __init__(self, cpus: list[int] | None = None) -> None:
        self.cpus = cpus
        self.dir = Path(tempfile.mkdtemp(prefix="loadtest-redis-"))
        self.socket = self.dir / "redis.sock"
        self.url = f"unix://{self.socket}"
        self.proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> bool:
        return shutil.which("redis-server") is not None

    def spawn(self) -> None:
        prefix = ["taskset", "-c", ",".join(map(str, self.cpus))] if self.cpus else []
        self.proc = subprocess.Popen(
            [
                *prefix,
                "redis-server",
                "--port",
                "0",
                "--unixsocket",
                str(self.socket),
                "--save",
                "",
                "--appendonly",
                "no",
                "--maxclients",
                "10000",
                "--client-output-buffer-limit",
                "pubsub 256mb 128mb 60",
            ],
            stdout=subprocess.DEVNULL,
            cwd=self.dir,
        )

    async def start(self) -> None:
        self.spawn()
        for _ in range(500):
            if self.socket.exists():
                return
            await asyncio.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    async def restart(self, down_s: float) -> None:
        """Stop it (its data is gone: no persistence), stay down, start it again."""
        assert self.proc is not None
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.socket.unlink(missing_ok=True)
        await asyncio.sleep(down_s)
        await self.start()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)
