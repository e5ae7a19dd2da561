"""Live progress on stderr: one line rewritten in place, at most ten times a second."""

from __future__ import annotations

import sys
import time

__all__ = ["Progress", "status"]


def status(line: str) -> None:
    """Rewrite the current status line."""
    sys.stderr.write("\r\x1b[2K" + line)
    sys.stderr.flush()


class Progress:
    def __init__(self, label: str, total: int) -> None:
        self.label = label
        self.total = max(1, total)
        self.started = time.perf_counter()
        self._shown = 0.0

    def update(self, done: int, extra: str = "") -> None:
        now = time.perf_counter()
        if now - self._shown < 0.1 and done < self.total:
            return
        self._shown = now
        frac = min(1.0, done / self.total)
        bar = "#" * int(frac * 30)
        status(
            f"{self.label} [{bar:<30}] {frac * 100:5.1f}% {done}/{self.total}"
            f" {now - self.started:6.1f} s {extra}"
        )

    def done(self, extra: str = "") -> None:
        self.update(self.total, extra)
        sys.stderr.write("\n")
