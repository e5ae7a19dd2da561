"""Throwaway redis-server instances for the tests, or the one named by TEST_REDIS_URL.

A missing redis-server fails loudly: `make test` installs it (see the Makefile).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import redis

__all__ = ["RedisServer", "redis_binary"]


def redis_binary() -> str:
    found = shutil.which("redis-server")
    if found is None:
        raise RuntimeError(
            "redis-server is not installed: run `make test` (installs it) or set TEST_REDIS_URL"
        )
    return found


class RedisServer:
    """A redis-server on a unix socket in its own temp dir (no port to collide on).

    ``stop``/``start`` restart it on the same socket, as an operator's restart would.
    """

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="confrere-redis-"))
        self.socket = self.dir / "redis.sock"
        self.url = f"unix://{self.socket}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        self.proc = subprocess.Popen(
            [
                redis_binary(),
                "--port", "0",
                "--unixsocket", str(self.socket),
                "--unixsocketperm", "700",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.dir),
                "--logfile", str(self.dir / "redis.log"),
            ],
        )  # fmt: skip
        client = redis.Redis(unix_socket_path=str(self.socket), socket_connect_timeout=1)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except (redis.ConnectionError, FileNotFoundError):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start (see {self.dir})") from None
                time.sleep(0.01)
        client.close()
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def external_redis_url() -> str | None:
    return os.environ.get("TEST_REDIS_URL")
