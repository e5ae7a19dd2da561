"""Run ``python -m server run`` as a child process on a socket bound by the parent.

Binding in the parent (port 0) and handing the descriptor over means no port is ever
guessed, and the node can be killed and restarted on the same address.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

__all__ = ["ServerProcess", "bind_socket"]

ROOT = Path(__file__).resolve().parent.parent


def bind_socket(host: str = "127.0.0.1") -> socket.socket:
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says
    # TCP, and Nagle's algorithm costs ~40 ms per small reply (delayed ACKs).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    sock.listen(4096)
    sock.set_inheritable(True)
    return sock


class ServerProcess:
    """One node; ``env`` holds its ``CONFRERE_*`` settings."""

    def __init__(self, env: Mapping[str, str], prefix: Sequence[str] = ()) -> None:
        self.extra_env = dict(env)
        self.prefix = list(prefix)  # e.g. ["taskset", "-c", "0"]
        self.sock = bind_socket()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        """Spawn the node and return once it answers ``/readyz``."""
        self.spawn()
        await self.wait_ready()

    def spawn(self) -> None:
        fd = self.sock.fileno()
        self.proc = subprocess.Popen(
            [*self.prefix, sys.executable, "-m", "server", "run", "--fd", str(fd)],
            cwd=ROOT,
            env={**os.environ, **self.extra_env},
            pass_fds=(fd,),
        )

    async def wait_ready(self) -> None:
        assert self.proc is not None
        async with httpx.AsyncClient(base_url=self.url) as http:
            for _ in range(1000):
                if self.proc.poll() is not None:
                    raise RuntimeError(f"server exited with {self.proc.returncode}")
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get("/readyz")).status_code == 200:
                        return
                await asyncio.sleep(0.02)
        raise RuntimeError("server did not become ready in 20 s")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, as a crash or an OOM kill would do."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def close(self) -> None:
        self.stop()
        self.sock.close()
