"""A busy neighbour: CPU and disk load on one core, for ``bench --noisy``.

Shared machines run other jobs beside a node: something spinning on the other core and
something writing and syncing files on the same disk. Two processes pinned to that
core: one spins, one rewrites a 64 MiB file in 256 KiB writes, each followed by
``fsync`` (the disk load a database or a build next door makes). Both run at the
lowest priority (nice 19): they take every cycle of that core the load generator
leaves, and keep the disk busy, but do not starve the generator, which would measure
the generator, not the server (at nice 0 they held the generator's core 62% of the
time, and the floor lost two thirds of its saturation with ours).

    python -m loadtest.neighbour cpu|disk
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from types import TracebackType

__all__ = ["Neighbour"]

_CHUNK = 256 * 1024
_FILE = 64 * 1024 * 1024


class Neighbour:
    """Runs the CPU and disk load, pinned to ``cpu`` when given, while in use."""

    def __init__(self, cpu: int | None) -> None:
        self.cpu = cpu
        self.procs: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> Neighbour:
        prefix = ["taskset", "-c", str(self.cpu)] if self.cpu is not None else []
        for kind in ("cpu", "disk"):
            command = [*prefix, sys.executable, "-m", "loadtest.neighbour", kind]
            self.procs.append(subprocess.Popen(command))
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait()
        self.procs.clear()


def _spin() -> None:
    x = 0
    while True:
        x = (x * 31 + 7) % 1_000_003


def _write() -> None:
    chunk = os.urandom(_CHUNK)
    with tempfile.TemporaryFile(prefix="loadtest-neighbour-") as f:
        fd = f.fileno()
        offset = 0
        while True:
            os.pwrite(fd, chunk, offset)
            os.fsync(fd)
            offset = (offset + _CHUNK) % _FILE


def main(argv: list[str] | None = None) -> int:
    kind = (argv or sys.argv[1:] or ["cpu"])[0]
    os.nice(19)
    with contextlib.suppress(KeyboardInterrupt):
        if kind == "cpu":
            _spin()
        else:
            _write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
