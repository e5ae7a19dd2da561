"""Room graphs for synthetic populations (pure: no I/O).

Practitioners are numbered 0..n-1 and numbers close together are "neighbours" (same
town, same hospital): rooms draw their members from a window of nearby numbers, so the
graph is clustered as a real one is, and a connection's rooms overlap with its
neighbours' rooms.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["PlannedRoom", "realistic_rooms", "uniform_rooms"]


@dataclass(frozen=True, slots=True)
class PlannedRoom:
    kind: str  # "direct" | "group" | "patient_case"
    members: tuple[int, ...]  # practitioner numbers; the first one created the room


def _window(rng: random.Random, n: int, size: int, spread: int) -> tuple[int, ...]:
    size = min(size, n)
    start = rng.randrange(n)
    span = min(n, max(size, spread))
    picked = rng.sample(range(span), size)
    return tuple((start + p) % n for p in picked)


def realistic_rooms(n: int, seed: int = 0) -> list[PlannedRoom]:
    """About two 1:1 rooms per practitioner, one group of 5-50 per 20 practitioners
    and one patient case of 3-10 per 8 (so ~2.7 group and ~0.8 case memberships
    each). Deterministic for a given ``(n, seed)``."""
    rng = random.Random(seed)
    rooms: list[PlannedRoom] = []
    if n >= 2:
        pairs: set[tuple[int, int]] = set()
        for _ in range(n):
            a = rng.randrange(n)
            b = (a + rng.randint(1, min(n - 1, 300))) % n
            pair = (min(a, b), max(a, b))
            if pair not in pairs:
                pairs.add(pair)
                rooms.append(PlannedRoom("direct", pair))
    for _ in range(max(1, n // 20)):
        rooms.append(PlannedRoom("group", _window(rng, n, rng.randint(5, 50), 400)))
    for _ in range(max(1, n // 8)):
        rooms.append(PlannedRoom("patient_case", _window(rng, n, rng.randint(3, 10), 60)))
    return rooms


def uniform_rooms(n: int, size: int) -> list[PlannedRoom]:
    """Disjoint groups of ``size`` consecutive practitioners (the benchmark's graph);
    the last group may be smaller."""
    return [
        PlannedRoom("group", tuple(range(start, min(n, start + size))))
        for start in range(0, n, size)
        if min(n, start + size) - start >= 2
    ]
