"""Latency summaries."""

from __future__ import annotations

__all__ = ["percentiles"]


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    """p50/p90/p99/max of ``samples_ms`` (nearest-rank), rounded to 0.01 ms."""
    if not samples_ms:
        return {"p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0.0}
    ordered = sorted(samples_ms)

    def rank(p: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]

    return {
        "p50": round(rank(50), 2),
        "p90": round(rank(90), 2),
        "p99": round(rank(99), 2),
        "max": round(ordered[-1], 2),
    }
