"""How ``bench`` chooses the next offered rate (pure logic, no server)."""

from __future__ import annotations

import pytest

from loadtest.bench import RateSearch, try_again


def run(search: RateSearch, saturation: float) -> list[float]:
    """Offer rates until the search stops; a step passes below ``saturation``."""
    offered = [search.rate]
    while (rate := search.record(offered[-1] < saturation)) is not None:
        offered.append(rate)
    return offered


def test_climbs_by_the_factor_then_bisects_between_pass_and_failure() -> None:
    search = RateSearch(1000, 2.0, max_steps=10, refine=3)
    offered = run(search, saturation=5000)
    assert offered[:4] == [1000, 2000, 4000, 8000]
    # 4000 passed and 8000 failed: the next rates lie between, each closer.
    assert offered[4] == pytest.approx((4000 * 8000) ** 0.5)
    assert len(offered) == 7
    assert search.passed is not None and search.failed is not None
    assert 4000 <= search.passed < 5000 <= search.failed <= 8000
    assert search.failed / search.passed < 8000 / 4000


def test_stops_after_max_steps_when_nothing_fails() -> None:
    search = RateSearch(10, 1.5, max_steps=4, refine=3)
    assert run(search, saturation=float("inf")) == pytest.approx([10, 15, 22.5, 33.75])
    assert search.failed is None


def test_a_first_step_that_fails_ends_the_search() -> None:
    search = RateSearch(10, 1.5, max_steps=4, refine=3)
    assert run(search, saturation=1) == [10]
    assert search.passed is None


def test_descending_divides_a_first_rate_that_fails_then_bisects() -> None:
    search = RateSearch(100, 2.0, max_steps=10, refine=2, descend=True)
    offered = run(search, saturation=30)
    assert offered[:3] == [100, 50, 25]
    assert search.passed is not None and search.failed is not None
    assert 25 <= search.passed < 30 <= search.failed <= 50
    assert len(offered) == 5


def test_a_failed_step_is_tried_once_more_and_more_often_only_while_contended() -> None:
    assert try_again(0, contended=False, retries=2)
    assert not try_again(1, contended=False, retries=2)
    assert try_again(1, contended=True, retries=2)
    assert not try_again(2, contended=True, retries=2)
    assert not try_again(0, contended=True, retries=0)  # --retries 0: none
