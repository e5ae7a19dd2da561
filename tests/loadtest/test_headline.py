"""``bench``'s headline: CPU per delivery at the fixed rate, or, when a target did not
keep up with it, at the highest rate of the saturation search every target passed
(pure logic, no server)."""

from __future__ import annotations

import argparse
from typing import Any

from loadtest.bench import _headline

ARGS = argparse.Namespace(at=40_000, at_seconds=10.0, p99_ms=100.0)


def row(offered: int, us: float, ok: bool = True, p99: float = 5.0) -> dict[str, Any]:
    return {
        "offered_per_s": offered,
        "delivered_per_s": offered,
        "lost": 0,
        "p99_ms": p99,
        "ok": ok,
        "server_cpu_us_per_delivery": us,
        "generator_cpu": 0.5,
        "server_cpu_stolen": 0.0,
        "generator_cpu_stolen": 0.0,
    }


def test_every_target_kept_up_the_ratios_are_read_at_the_fixed_rate() -> None:
    results = {"ours": {"at": row(40_000, 12.0)}, "floor": {"at": row(40_000, 10.0)}}
    headline = _headline(ARGS, results)
    assert headline["void"] is False and "fallback" not in headline
    assert headline["ours_to_floor"] == 1.2


def test_a_target_that_did_not_keep_up_voids_the_fixed_rate_and_falls_back() -> None:
    # The floor saturated at 40,000/s (p99 in seconds); the searches passed 20,000
    # for both, 28,000 only for ours (its bisection rates differ from the floor's).
    results = {
        "ours": {
            "at": row(40_000, 14.0),
            "steps_table": [row(10_000, 16.0), row(20_000, 13.0), row(28_000, 12.5)],
        },
        "floor": {
            "at": row(40_000, 9.0, ok=False, p99=3_600.0),
            "steps_table": [
                row(10_000, 12.0),
                row(20_000, 10.0, ok=False),  # failed once, passed when tried again
                row(20_000, 10.0),
                row(28_000, 9.5, ok=False),
                row(24_000, 9.8),
            ],
        },
    }
    headline = _headline(ARGS, results)
    assert headline["void"] is True and headline["kept_up"] == {"ours": True, "floor": False}
    assert "ours_to_floor" not in headline  # not at a rate the floor carried
    fallback = headline["fallback"]
    assert fallback["offered_per_s"] == 20_000
    assert fallback["server_cpu_us_per_delivery"] == {"ours": 13.0, "floor": 10.0}
    assert fallback["ours_to_floor"] == 1.3
    assert "floor did not keep up with 40,000/s" in fallback["why"]
    assert "p99 3600.0 ms" in fallback["why"]


def test_without_a_rate_every_target_passed_there_is_no_fallback_figure() -> None:
    results = {
        "ours": {"at": row(40_000, 14.0, ok=False), "steps_table": [row(2_000, 20.0, ok=False)]},
        "floor": {"at": row(40_000, 9.0), "steps_table": [row(2_000, 12.0)]},
    }
    fallback = _headline(ARGS, results)["fallback"]
    assert fallback["offered_per_s"] is None
    assert "no rate of the saturation search passed for every target" in fallback["why"]


def test_without_a_saturation_search_the_headline_says_why_there_is_no_fallback() -> None:
    results = {"ours": {"at": row(40_000, 14.0)}, "floor": {"at": row(40_000, 9.0, ok=False)}}
    fallback = _headline(ARGS, results)["fallback"]
    assert fallback["offered_per_s"] is None and "--no-saturation" in fallback["why"]
