"""A throwaway PostgreSQL for the load tests (``--start-postgres``).

It is the tests' server (``tests/services_pg.py``: initdb + pg_ctl on a unix socket in
a temporary directory; needs the server binaries and the repository's ``tests/``),
started with fsync, synchronous commit and full-page writes on, so that a commit costs
what it costs in production. ``TEST_DATABASE_URL``, when set, names a server to use
instead (nothing is started then).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["fresh_database", "postgres_pids", "start_postgres"]

TESTS_DIR = str(Path(__file__).resolve().parent.parent / "tests")


def _services_pg() -> ModuleType:
    if TESTS_DIR not in sys.path:
        sys.path.insert(0, TESTS_DIR)
    return importlib.import_module("services_pg")


@contextlib.contextmanager
def _affinity(cpus: Sequence[int] | None) -> Iterator[None]:
    """This thread pinned to ``cpus`` meanwhile: the processes it starts inherit it
    (pg_ctl daemonises the postmaster, which no taskset prefix would follow)."""
    if not cpus:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, set(cpus))
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def start_postgres(cpus: Sequence[int] | None = None) -> Any:
    """Start the server (a ``services_pg.PostgresServer``: ``.url``, ``.restart()``,
    ``.stop()``), its processes pinned to ``cpus`` when given."""
    with _affinity(cpus):
        return _services_pg().start_postgres(fsync=True)


async def fresh_database(server: Any) -> str:
    """An empty database on ``server``; its URL."""
    url: str = await _services_pg().fresh_database(server.url)
    return url


def postgres_pids(server: Any) -> list[int]:
    """The postmaster and its children (backends, WAL writer, checkpointer...) of a
    server started here; none for an external one. The backends are the nodes' pool
    connections, so the list is stable while the nodes run."""
    data_dir: Path | None = getattr(server, "data_dir", None)
    if data_dir is None:
        return []
    try:
        postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return []
    pids = [postmaster]
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == postmaster:
            pids.append(int(entry.name))
    return pids
