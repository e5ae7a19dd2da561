"""Throwaway redis-server instances for the tests, or the one named by TEST_REDIS_URL;
and a throwaway Redis Cluster (three masters), or the one named by TEST_REDIS_CLUSTER_URL.

A missing redis-server or redis-cli fails loudly: `make test` installs them (see the
Makefile).
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis

__all__ = ["RedisCluster", "RedisServer", "redis_binary"]


def redis_binary(name: str = "redis-server") -> str:
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(
            f"{name} is not installed: run `make test` (installs it) or set TEST_REDIS_URL"
            " and TEST_REDIS_CLUSTER_URL"
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


def external_redis_cluster_url() -> str | None:
    return os.environ.get("TEST_REDIS_CLUSTER_URL")


_BUS_OFFSET = 10000  # a cluster node also listens on its port + 10000 (the cluster bus)
_FIRST_PORT = 1024


def _ephemeral_floor() -> int:
    """The lowest port the kernel hands out by itself (bind to port 0, connect)."""
    try:
        text = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text()
        return int(text.split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def _free_cluster_ports(count: int) -> list[int]:
    """``count`` TCP ports on 127.0.0.1 that are free, each with its bus port free too.

    Both lie below the kernel's ephemeral range: a node stopped by a test must find its
    port free when restarted, and a port the kernel may hand to any outgoing connection
    (another pytest worker makes thousands) could be taken meanwhile. Candidates are
    drawn at random, so that concurrent sessions rarely try the same ones; all stay
    bound until the choice is made, and are released just before redis-server binds
    them (a small race, which :meth:`RedisCluster.start` survives by choosing again).
    """
    top = _ephemeral_floor() - 1 - _BUS_OFFSET
    if top <= _FIRST_PORT:
        raise RuntimeError("no room below the ephemeral port range for a Redis Cluster")
    draw = random.SystemRandom()  # not the tests' random, which a test may seed
    held: list[socket.socket] = []
    chosen: list[int] = []
    try:
        for _ in range(200):
            port = draw.randint(_FIRST_PORT, top)
            if port in chosen:
                continue
            pair: list[socket.socket] = []
            try:
                for candidate in (port, port + _BUS_OFFSET):
                    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    pair.append(probe)
                    probe.bind(("127.0.0.1", candidate))
            except OSError:
                for probe in pair:
                    probe.close()
                continue
            held.extend(pair)
            chosen.append(port)
            if len(chosen) == count:
                return chosen
        raise RuntimeError(f"could not find {count} free port pairs for a Redis Cluster")
    finally:
        for sock in held:
            sock.close()


class RedisCluster:
    """A Redis Cluster of ``masters`` redis-server processes on 127.0.0.1, no replicas.

    Each node has its own directory (holding its ``nodes.conf``), so ``stop(i)`` then
    ``start(i)`` restarts node ``i`` on the same port with the same identity and slots,
    as an operator's restart would. With no replicas the cluster is down (state ``fail``)
    while a master is down, and back once it has rejoined.
    """

    NODE_TIMEOUT_MS = 2000

    def __init__(self, masters: int = 3) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="confrere-redis-cluster-"))
        self.ports = _free_cluster_ports(masters)
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * masters

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports)

    def _node_dir(self, index: int) -> Path:
        return self.dir / str(self.ports[index])

    def _client(self, index: int) -> redis.Redis:
        return redis.Redis(
            host="127.0.0.1", port=self.ports[index], socket_connect_timeout=1, socket_timeout=5
        )

    def start(self) -> RedisCluster:
        """Start every node, create the cluster, wait until every node says it is ok."""
        try:
            for attempt in range(3):
                try:
                    for index in range(len(self.ports)):
                        self.start_node(index, wait_ok=False)
                    break
                except RuntimeError:
                    # A port taken between its choice and the bind (see
                    # _free_cluster_ports): start over on other ports.
                    for index in range(len(self.ports)):
                        self.stop_node(index)
                    if attempt == 2:
                        raise
                    self.ports = _free_cluster_ports(len(self.ports))
            created = subprocess.run(
                [
                    redis_binary("redis-cli"),
                    "--cluster", "create",
                    *(f"127.0.0.1:{port}" for port in self.ports),
                    "--cluster-replicas", "0",
                    "--cluster-yes",
                ],
                capture_output=True,
                timeout=60,
                check=False,
            )  # fmt: skip
            if created.returncode != 0:
                raise RuntimeError(
                    "redis-cli --cluster create failed:\n"
                    + created.stdout.decode(errors="replace")
                    + created.stderr.decode(errors="replace")
                )
            self.wait_ok()
        except BaseException:
            self.close()
            raise
        return self

    def start_node(self, index: int, *, wait_ok: bool = True) -> None:
        """(Re)start node ``index`` on its port; by default wait until the cluster is ok."""
        node_dir = self._node_dir(index)
        node_dir.mkdir(exist_ok=True)
        proc = subprocess.Popen(
            [
                redis_binary(),
                "--port", str(self.ports[index]),
                "--bind", "127.0.0.1",
                "--cluster-enabled", "yes",
                "--cluster-config-file", str(node_dir / "nodes.conf"),
                "--cluster-node-timeout", str(self.NODE_TIMEOUT_MS),
                "--save", "",
                "--appendonly", "no",
                "--dir", str(node_dir),
                "--logfile", str(node_dir / "redis.log"),
            ],
        )  # fmt: skip
        self.procs[index] = proc
        client = self._client(index)
        deadline = time.monotonic() + 10
        try:
            while True:
                try:
                    client.ping()
                    break
                except (redis.ConnectionError, redis.TimeoutError):
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(
                            f"redis-server (cluster node) did not start (see {node_dir})"
                        ) from None
                    time.sleep(0.01)
        finally:
            client.close()
        if wait_ok:
            self.wait_ok()

    def stop_node(self, index: int) -> None:
        proc = self.procs[index]
        if proc is not None and proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=10)
        self.procs[index] = None

    def wait_ok(self, timeout: float = 60) -> None:
        """Wait until every node reports ``cluster_state:ok`` and knows every master."""
        deadline = time.monotonic() + timeout
        pending = list(range(len(self.ports)))
        while pending:
            index = pending[0]
            client = self._client(index)
            try:
                info = client.execute_command("CLUSTER", "INFO")
                text = info.decode() if isinstance(info, bytes) else str(info)
                if "cluster_state:ok" in text and f"cluster_known_nodes:{len(self.ports)}" in text:
                    pending.pop(0)
                    continue
            except redis.RedisError:
                pass
            finally:
                client.close()
            if time.monotonic() > deadline:
                raise RuntimeError(f"Redis Cluster not ok after {timeout}s (see {self.dir})")
            time.sleep(0.05)

    def node_for_channel(self, channel: str) -> int:
        """Index of the master that owns ``channel``'s hash slot."""
        client = self._client(0)
        try:
            slot = int(client.execute_command("CLUSTER", "KEYSLOT", channel))
            for start, end, master, *_ in client.execute_command("CLUSTER", "SLOTS"):
                if int(start) <= slot <= int(end):
                    return self.ports.index(int(master[1]))
        finally:
            client.close()
        raise RuntimeError(f"no master owns slot {slot}")

    def move_slot_of(self, channel: str, target: int) -> None:
        """Move the hash slot of ``channel`` to master ``target``, as a resharding does
        (the slot must hold no keys: pub/sub channels are not keys)."""
        source = self.node_for_channel(channel)
        if source == target:
            raise ValueError(f"{channel!r} is already on master {target}")
        clients = [self._client(i) for i in range(len(self.ports))]
        try:
            slot = int(clients[source].execute_command("CLUSTER", "KEYSLOT", channel))
            ids = [client.execute_command("CLUSTER", "MYID").decode() for client in clients]
            clients[target].execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", ids[source])
            clients[source].execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", ids[target])
            # Target first, then source (which then drops the slot), then the others, so
            # that every master agrees at once instead of by gossip.
            others = [i for i in range(len(clients)) if i not in (source, target)]
            for index in (target, source, *others):
                clients[index].execute_command("CLUSTER", "SETSLOT", slot, "NODE", ids[target])
        finally:
            for client in clients:
                client.close()
        if self.node_for_channel(channel) != target:
            raise RuntimeError(f"slot of {channel!r} did not move to master {target}")

    def close(self) -> None:
        for index in range(len(self.ports)):
            self.stop_node(index)
        shutil.rmtree(self.dir, ignore_errors=True)
