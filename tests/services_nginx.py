"""A throwaway nginx (Debian's) running README's reverse proxy configuration.

The ``upstream``/``server`` blocks are read from README.md itself, so the test fails
if the documented configuration does not work. For a test on one machine they are
changed only where they must be: the upstream's servers are the test's nodes, the
listener is a free port of 127.0.0.1 without TLS, and nginx connects to the nodes from
127.0.0.10 (``proxy_bind``), as a proxy on its own host would (the nodes then trust
that address, not the loopback one). A missing nginx fails loudly: ``make test``
installs it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["PROXY_ADDRESS", "Nginx", "readme_nginx_blocks"]

ROOT = Path(__file__).resolve().parent.parent
PROXY_ADDRESS = "127.0.0.10"


def nginx_binary() -> str:
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if found is None:
        raise RuntimeError("nginx is not installed: run `make test` (installs Debian's nginx)")
    return found


def readme_nginx_blocks() -> str:
    """README's ``upstream confrere {...}`` and ``server {...}`` blocks, dedented."""
    lines = (ROOT / "README.md").read_text("utf-8").splitlines()
    start = lines.index("    upstream confrere {")
    block = []
    for line in lines[start:]:
        if not line.startswith("    "):
            break
        block.append(line[4:])
    return "\n".join(block) + "\n"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class Nginx:
    """``start``, ``reload`` with other upstream servers, ``stop``."""

    def __init__(self, upstreams: list[str]) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="confrere-nginx-"))
        self.port = _free_port()
        self.upstreams = upstreams
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _write_config(self) -> Path:
        blocks = readme_nginx_blocks()
        servers = "".join(f"    server {u};\n" for u in self.upstreams)
        blocks, count = re.subn(r"(    server 10\.0\.0\.\d+:8000;\n)+", servers, blocks)
        assert count == 1, "README's upstream block changed shape"
        blocks, count = re.subn(r"listen 443 ssl http2;", f"listen 127.0.0.1:{self.port};", blocks)
        assert count == 1, "README's listen directive changed shape"
        d = self.dir
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (d / sub).mkdir(exist_ok=True)
        user = "user root;\n" if os.geteuid() == 0 else ""
        conf = d / "nginx.conf"
        conf.write_text(
            f"{user}worker_processes 1;\ndaemon off;\npid {d}/nginx.pid;\n"
            f"error_log {d}/error.log warn;\nevents {{ worker_connections 1024; }}\n"
            f"http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n"
            f"  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n"
            f"  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n"
            f"  proxy_bind {PROXY_ADDRESS};  # as if nginx ran on a host of its own\n"
            + "".join(f"  {line}\n" for line in blocks.splitlines())
            + "}\n"
        )
        return conf

    def start(self) -> Nginx:
        conf = self._write_config()
        self.proc = subprocess.Popen(
            [
                nginx_binary(),
                "-p",
                str(self.dir),
                "-e",
                str(self.dir / "error.log"),
                "-c",
                str(conf),
            ]
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    log = (self.dir / "error.log").read_text(errors="replace")
                    raise RuntimeError(f"nginx did not start:\n{log}") from None
                time.sleep(0.02)

    def reload(self, upstreams: list[str]) -> None:
        """New upstream servers, as an operator's ``nginx -s reload``: connections open
        through the old workers are not cut by it."""
        assert self.proc is not None
        self.upstreams = upstreams
        self._write_config()
        self.proc.send_signal(signal.SIGHUP)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)
