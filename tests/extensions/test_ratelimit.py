"""Token buckets: bounds and waiting times, property-tested with a controlled clock."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from metricgate.extensions.ratelimit import KeyedBuckets, TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@given(
    rate=st.floats(0.1, 1e6),
    burst=st.floats(1, 1e6),
    steps=st.lists(st.tuples(st.floats(-5, 100), st.floats(0, 2e6)), max_size=40),
)
def test_bucket_stays_within_bounds(
    rate: float, burst: float, steps: list[tuple[float, float]]
) -> None:
    clock = Clock()
    bucket = TokenBucket(rate, burst, clock)
    for advance, n in steps:
        clock.now += advance  # may step back: must refill nothing
        before = bucket.tokens
        wait = bucket.take(n)
        assert 0 <= bucket.tokens <= burst
        if wait == 0:
            assert n <= before + max(advance, 0) * rate + 1e-6 * max(1.0, burst)
        elif n > burst:
            assert math.isinf(wait)
        else:
            assert wait > 0
            clock.now += wait * (1 + 1e-9) + 1e-9
            assert bucket.take(n) == 0  # waiting as told is enough


def test_points_per_second_with_burst() -> None:
    clock = Clock()
    bucket = TokenBucket(100, 200, clock)
    assert bucket.take(200) == 0
    assert bucket.take(50) == 0.5
    clock.now += 0.5
    assert bucket.take(50) == 0
    assert bucket.wait_time(1) > 0
    assert math.isinf(bucket.take(201))


def test_keyed_buckets_are_bounded_and_forget_recovered_keys() -> None:
    clock = Clock()
    buckets = KeyedBuckets(rate=1, burst=2, max_keys=4, clock=clock)
    buckets.spend("a")
    buckets.spend("a")
    assert buckets.wait_time("a") == 1.0
    assert buckets.wait_time("b") == 0
    for key in "bcdefgh":
        buckets.spend(key)
    assert len(buckets) <= 4
    clock.now += 10
    buckets.spend("x")
    assert buckets.wait_time("a") == 0
