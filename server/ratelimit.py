"""Token-bucket rate limiting, in memory, per node.

Each key (an account, a client address, a device...) has a bucket of ``burst`` tokens
refilled at ``rate_per_s``; a request costs tokens or is refused with the time until it
would be allowed. Per node: with several nodes behind a balancer a client gets at most
the node count times the limit, which still bounds brute force; the buckets cost a few
dozen bytes each and the least recently used ones are dropped beyond ``max_keys`` (a
dropped key starts again with a full bucket, so the cap only ever loosens, never blocks).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

from protocol.errors import ErrorCode

from .errors import ApiError

__all__ = ["Bucket", "RateLimiter", "retry_after"]


LONGEST_BOOKING_S = 60.0


def retry_after(wait_s: float) -> float:
    """``wait_s`` as a ``retry_after``: whole milliseconds, rounded up (a client that
    obeys it never comes back before the bucket allows it), at least 1 ms."""
    return max(math.ceil(wait_s * 1000), 1) / 1000


class Bucket:
    """A token bucket: ``rate`` tokens per second, at most ``burst`` saved up.

    A refusal answers the time until *this* request will be allowed, counting the
    requests refused before it that were told to come back sooner: each refusal books
    the next free slot (``promised``), so a client holding many requests that obeys
    ``retry_after`` retries them one by one as the bucket refills, instead of all at
    the same instant (when all but one would be refused again). Bookings reach at most
    ``LONGEST_BOOKING_S`` (or the time to refill the whole burst, if longer) ahead, so
    a client that never waits cannot push them out for ever; they reserve nothing, so
    a request that arrives when a token is there is allowed.

    Checked for every frame of a connection: a few float operations on slots."""

    __slots__ = ("burst", "promised", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = now
        self.promised = now

    def take(self, now: float, cost: float = 1.0) -> float:
        """Take ``cost`` tokens: 0.0 if there were enough, else the seconds until this
        request will be allowed (nothing is taken then). A cost above the burst counts
        as the burst, so that a large frame is slowed, never refused for good; a
        negative cost gives tokens back."""
        tokens = self.tokens + (now - self.stamp) * self.rate
        if tokens > self.burst:
            tokens = self.burst
        self.stamp = now
        if cost > self.burst:
            cost = self.burst
        if tokens >= cost:
            tokens -= cost
            self.tokens = tokens if tokens < self.burst else self.burst
            return 0.0
        self.tokens = tokens
        wait = (cost - tokens) / self.rate
        booked = self.promised - now
        if booked > wait:
            wait = booked
        longest = max(self.burst / self.rate, LONGEST_BOOKING_S)
        if wait > longest:
            wait = longest
        self.promised = now + wait + cost / self.rate
        return wait


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
        self._buckets: OrderedDict[str, Bucket] = OrderedDict()

    def hit(self, key: str, cost: float = 1.0) -> float:
        """Take ``cost`` tokens from ``key``'s bucket: ``0.0`` if allowed, else the seconds
        until it will be (:meth:`Bucket.take`; nothing is taken then)."""
        now = self._clock()
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            bucket = Bucket(self.rate_per_s, self.burst, now)
        wait = bucket.take(now, cost)
        self._buckets[key] = bucket
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return wait

    def check(self, key: str, what: str, cost: float = 1.0) -> None:
        """Raise 429 ``rate_limited`` (with ``retry_after``) when ``key`` is over its rate;
        ``what`` names the limited action in the message, e.g. "log-in attempts"."""
        wait = self.hit(key, cost)
        if wait > 0:
            raise ApiError(
                ErrorCode.RATE_LIMITED, f"too many {what}, retry later", retry_after(wait)
            )

    def reset(self, key: str) -> None:
        """Forget ``key`` (e.g. after a successful log-in)."""
        self._buckets.pop(key, None)
