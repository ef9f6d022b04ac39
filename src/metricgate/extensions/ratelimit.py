"""Token buckets: a tenant's points per second, failed logins per client address.

A bucket holds up to `burst` tokens and gains `rate` per second. `take(n)` is all or nothing and
answers how long to wait when it cannot take, which becomes a `Retry-After`. `KeyedBuckets`
keeps one bucket per key (a client address) in a bounded table.

Invariant: a bucket never holds more than `burst` tokens and never goes negative, whatever the
clock does (a clock that steps back refills nothing).
"""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    """`rate` tokens per second up to `burst`; starts full."""

    __slots__ = ("_clock", "_stamp", "burst", "rate", "tokens")

    def __init__(
        self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or burst <= 0:
            raise ValueError("a token bucket needs a positive rate and burst")
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self._clock = clock
        self._stamp = clock()

    def _refill(self) -> None:
        now = self._clock()
        elapsed = now - self._stamp
        if elapsed > 0:
            self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        self._stamp = now  # after a step back, refill counts from the new reading

    def take(self, n: float = 1.0) -> float:
        """Take `n` tokens and return 0, or take none and return the seconds until `n` are there.

        `n` above `burst` can never be taken: the answer is `inf`.
        """
        self._refill()
        if self.tokens >= n:
            self.tokens -= n
            return 0.0
        if n > self.burst:
            return float("inf")
        return (n - self.tokens) / self.rate

    def wait_time(self, n: float = 1.0) -> float:
        """Seconds until `n` tokens are there (0 if now), without taking any."""
        self._refill()
        return 0.0 if self.tokens >= n else (n - self.tokens) / self.rate

    @property
    def full(self) -> bool:
        self._refill()
        return self.tokens >= self.burst


class KeyedBuckets:
    """One `TokenBucket` per key, at most `max_keys` of them (full buckets are forgotten first)."""

    __slots__ = ("_buckets", "_clock", "burst", "max_keys", "rate")

    def __init__(
        self,
        rate: float,
        burst: float,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}

    def wait_time(self, key: str) -> float:
        """Seconds until `key` may spend again; 0 when it may now (unknown keys may)."""
        bucket = self._buckets.get(key)
        return 0.0 if bucket is None else bucket.wait_time()

    def spend(self, key: str) -> None:
        """Spend one token of `key`'s bucket (if it has one left)."""
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._evict()
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst, self._clock)
        bucket.take()

    def __len__(self) -> int:
        return len(self._buckets)

    def _evict(self) -> None:
        # Full buckets carry no memory of failures; if none is full, forget the oldest half:
        # an attacker filling the table only gets its own older addresses forgotten.
        for key in [k for k, b in self._buckets.items() if b.full]:
            del self._buckets[key]
        if len(self._buckets) >= self.max_keys:
            for key in list(self._buckets)[: self.max_keys // 2 or 1]:
                del self._buckets[key]
