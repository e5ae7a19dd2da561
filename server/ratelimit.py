"""Token-bucket rate limiting, in memory, per node.

Each key (an account, a client address, a device...) has a bucket of ``burst`` tokens
refilled at ``rate_per_s``; a request costs tokens or is refused with the time until it
would be allowed. Per node: with several nodes behind a balancer a client gets at most
the node count times the limit, which still bounds brute force; the buckets cost a few
dozen bytes each and the least recently used ones are dropped beyond ``max_keys`` (a
dropped key starts again with a full bucket, so the cap only ever loosens, never blocks).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from protocol.errors import ErrorCode

from .errors import ApiError

__all__ = ["RateLimiter"]


class RateLimiter:
    def __init__(
        self,
        rate_per_s: float,
        burst: float,
        *,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("rate_per_s must be > 0 and burst >= 1")
        self.rate_per_s = rate_per_s
        self.burst = float(burst)
        self.max_keys = max_keys
        self._clock = clock
        # key -> (tokens, time of that count)
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def hit(self, key: str, cost: float = 1.0) -> float:
        """Take ``cost`` tokens from ``key``'s bucket: ``0.0`` if allowed, else the seconds
        until it would be (nothing is taken then)."""
        now = self._clock()
        tokens, at = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate_per_s)
        if tokens >= cost:
            wait = 0.0
            tokens -= cost
        else:
            wait = (cost - tokens) / self.rate_per_s
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return wait

    def check(self, key: str, what: str, cost: float = 1.0) -> None:
        """Raise 429 ``rate_limited`` (with ``retry_after``) when ``key`` is over its rate;
        ``what`` names the limited action in the message, e.g. "log-in attempts"."""
        wait = self.hit(key, cost)
        if wait > 0:
            raise ApiError(
                ErrorCode.RATE_LIMITED, f"too many {what}, retry later", round(wait + 0.0005, 3)
            )

    def reset(self, key: str) -> None:
        """Forget ``key`` (e.g. after a successful log-in)."""
        self._buckets.pop(key, None)
