"""A throwaway PostgreSQL server for the test session, and a fresh database per test.

If ``TEST_DATABASE_URL`` is set, that server is used as is (nothing is started or
stopped). Otherwise ``initdb``/``pg_ctl`` are found on ``PATH``, then in
``/usr/lib/postgresql/*/bin`` (newest first); a cluster is created in a temporary
directory with trust authentication and started listening on a unix socket in that
directory only (no TCP). ``fsync`` is off: the instance is thrown away, durability
across power loss is not what the tests check. initdb and postgres refuse to run as
root, so under root they run as the ``postgres`` OS user (``runuser``), which owns the
temporary directory; root then connects through the socket as the ``postgres`` role.

Missing binaries or a missing ``postgres`` OS user raise :class:`PostgresUnavailable`
with the reason: the suite fails loudly, it never skips.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import SplitResult, urlsplit, urlunsplit

import asyncpg

__all__ = [
    "PostgresServer",
    "PostgresUnavailable",
    "drop_database",
    "fresh_database",
    "start_postgres",
]

_SEARCH_DIRS = "/usr/lib/postgresql/*/bin"
_OS_USER = "postgres"
_PORT = 5432  # only names the socket file (.s.PGSQL.5432) in our private directory


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server could be started for the tests."""


@dataclass
class PostgresServer:
    """A running server: ``url`` names its maintenance database (``postgres``)."""

    url: str
    data_dir: Path | None = None
    pg_ctl: str | None = None
    _as_owner: list[str] = field(default_factory=list)
    _tmp: Path | None = None

    def restart(self, down_s: float = 0.0) -> None:
        """Stop the server at once (``immediate``: as a crash would; what was committed
        is on disk), stay down ``down_s`` seconds, start it again on the same files."""
        assert self.pg_ctl is not None and self.data_dir is not None and self._tmp is not None
        base = [*self._as_owner, self.pg_ctl, "-D", str(self.data_dir)]
        _run([*base, "-m", "immediate", "-w", "stop"], self._tmp, "pg_ctl stop")
        time.sleep(down_s)
        log = self._tmp / "postgres.log"
        _run([*base, "-l", str(log), "-w", "-t", "60", "start"], self._tmp, "pg_ctl start", log)

    def stop(self) -> None:
        """Stop the server and delete its files; does nothing for an external server."""
        if self.pg_ctl is not None and self.data_dir is not None:
            stop = [self.pg_ctl, "-D", str(self.data_dir), "-m", "immediate", "-w", "stop"]
            subprocess.run(
                [*self._as_owner, *stop],
                cwd=self._tmp,
                capture_output=True,
                check=False,
            )
            self.pg_ctl = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None


def _find_binaries() -> tuple[str, str]:
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        return os.path.realpath(initdb), os.path.realpath(pg_ctl)

    def major(path: str) -> float:
        try:
            return float(Path(path).parent.name)
        except ValueError:
            return 0.0

    for bin_dir in sorted(glob.glob(_SEARCH_DIRS), key=major, reverse=True):
        initdb, pg_ctl = os.path.join(bin_dir, "initdb"), os.path.join(bin_dir, "pg_ctl")
        if os.access(initdb, os.X_OK) and os.access(pg_ctl, os.X_OK):
            return initdb, pg_ctl
    raise PostgresUnavailable(
        "PostgreSQL server binaries not found: need initdb and pg_ctl on PATH or in"
        f" {_SEARCH_DIRS} (install the postgresql package), or set TEST_DATABASE_URL"
        " to a server the tests may create databases on"
    )


def _owner_prefix() -> tuple[list[str], int | None, int | None]:
    """The command prefix to run server binaries, and the uid/gid owning the files."""
    if os.geteuid() != 0:
        return [], None, None
    try:
        entry = pwd.getpwnam(_OS_USER)
    except KeyError:
        raise PostgresUnavailable(
            f"running as root, and initdb refuses root: an OS user {_OS_USER!r} is needed"
            " to run the throwaway server (or set TEST_DATABASE_URL)"
        ) from None
    if shutil.which("runuser") is None:
        raise PostgresUnavailable("running as root: `runuser` is needed to drop to postgres")
    return ["runuser", "-u", _OS_USER, "--"], entry.pw_uid, entry.pw_gid


def _run(cmd: list[str], cwd: Path, what: str, log: Path | None = None) -> None:
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        detail = (done.stdout + done.stderr).strip()
        if log is not None and log.exists():
            detail += "\n--- server log ---\n" + log.read_text(errors="replace")[-4000:]
        raise PostgresUnavailable(f"{what} failed ({done.returncode}): {detail}")


def start_postgres(*, fsync: bool = False) -> PostgresServer:
    """Start a throwaway server (or return the one named by ``TEST_DATABASE_URL``)."""
    external = os.environ.get("TEST_DATABASE_URL")
    if external:
        return PostgresServer(external)
    initdb, pg_ctl = _find_binaries()
    as_owner, uid, gid = _owner_prefix()
    tmp = Path(tempfile.mkdtemp(prefix="confrere-pg-"))
    server = PostgresServer("", _tmp=tmp)
    try:
        os.chmod(tmp, 0o700)
        if uid is not None and gid is not None:
            os.chown(tmp, uid, gid)
        data, log = tmp / "data", tmp / "postgres.log"
        init = [initdb, "-D", str(data), "-A", "trust", "-U", _OS_USER, "-E", "UTF8"]
        _run([*as_owner, *init, "--locale=C", "--no-sync"], tmp, "initdb")
        # Settings go in the config file rather than through pg_ctl -o, which a shell
        # re-parses: no quoting of the directory name to get wrong.
        with open(data / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write(
                "\n# confrere test instance\n"
                "listen_addresses = ''\n"
                f"unix_socket_directories = '{tmp}'\n"
                f"port = {_PORT}\n"
                f"fsync = {'on' if fsync else 'off'}\n"
                f"synchronous_commit = {'on' if fsync else 'off'}\n"
                f"full_page_writes = {'on' if fsync else 'off'}\n"
                "max_connections = 200\n"
            )
        _run(
            [*as_owner, pg_ctl, "-D", str(data), "-l", str(log), "-w", "-t", "60", "start"],
            tmp,
            "pg_ctl start",
            log,
        )
        server.data_dir, server.pg_ctl, server._as_owner = data, pg_ctl, as_owner
        server.url = f"postgresql://{_OS_USER}@/postgres?host={tmp}&port={_PORT}"
    except BaseException:
        server.stop()
        raise
    return server


def _with_database(url: str, name: str) -> str:
    parts: SplitResult = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


async def fresh_database(base_url: str) -> str:
    """Create an empty, uniquely named database on the server; return its URL."""
    name = f"confrere_test_{uuid.uuid4().hex[:16]}"
    conn = await asyncpg.connect(base_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return _with_database(base_url, name)


async def drop_database(base_url: str, url: str) -> None:
    """Drop the database named by ``url`` (made by :func:`fresh_database`)."""
    name = urlsplit(url).path.lstrip("/")
    conn = await asyncpg.connect(base_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
