"""The token bucket (pure, with an injected clock)."""

from __future__ import annotations

import pytest

from protocol.errors import ErrorCode
from server.errors import ApiError
from server.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_bucket_allows_a_burst_then_refills_at_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(2.0, 3, clock=clock)
    assert [limiter.hit("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.hit("a") == pytest.approx(0.5)
    assert limiter.hit("b") == 0.0  # keys are independent
    clock.t = 0.5
    assert limiter.hit("a") == 0.0
    assert limiter.hit("a") == pytest.approx(0.5)


def test_check_raises_rate_limited_with_retry_after() -> None:
    limiter = RateLimiter(1.0, 1, clock=Clock())
    limiter.check("k", "log-in attempts")
    with pytest.raises(ApiError) as caught:
        limiter.check("k", "log-in attempts")
    assert caught.value.code is ErrorCode.RATE_LIMITED and caught.value.status == 429
    assert caught.value.retry_after == pytest.approx(1.0, abs=0.01)
    assert "log-in attempts" in caught.value.message
    limiter.reset("k")
    limiter.check("k", "log-in attempts")


def test_least_recently_used_keys_are_dropped_beyond_the_cap() -> None:
    limiter = RateLimiter(1.0, 1, max_keys=2, clock=Clock())
    limiter.hit("a")
    limiter.hit("b")
    limiter.hit("c")  # drops "a": it starts again with a full bucket
    assert limiter.hit("a") == 0.0
    assert limiter.hit("c") > 0
