"""Exponential (base-2) histograms for targets that only take explicit `le` buckets.

`to_explicit` turns an `ExponentialHistogramPoint` into a `HistogramPoint` whose bounds are the
exponential buckets' upper boundaries (negative buckets first, then the zero bucket, then the
positive buckets). Bucket geometry (boundaries, downscaling) lives in
`metricgate.model.exponential`; adding exponential points in `metricgate.model.arithmetic`.

Bucket i at scale s covers (base**i, base**(i+1)] with base = 2**(2**-s); negative bucket i covers
[-base**(i+1), -base**i). Explicit buckets are (previous le, le], so a value lying exactly on a
negative boundary lands one bucket higher than `le` says: that is inherent to the conversion.

Invariant: the conversion keeps the total count, and never produces more than `max_buckets`
explicit bounds: when a point spans more buckets, it is downscaled (pairs of buckets merged,
scale - 1) until it fits, which is exactly what an SDK does when its own bucket limit is reached.
"""

from __future__ import annotations

import math

from metricgate.model import ExponentialHistogramPoint, HistogramPoint
from metricgate.model.exponential import MAX_BUCKETS, downscale, shift_to_fit, trim, upper_bound

__all__ = ["MAX_BUCKETS", "to_explicit"]

_MIN_LIMIT = 4
"""Two sides straddling index 0 keep two buckets each however far they are downscaled."""


def to_explicit(point: ExponentialHistogramPoint, max_buckets: int = MAX_BUCKETS) -> HistogramPoint:
    """`point` as explicit buckets with at most `max_buckets` bounds (see module docstring)."""
    positive, negative = trim(point.positive), trim(point.negative)
    limit = max(_MIN_LIMIT, max_buckets - 1)  # one bound is kept for the zero bucket
    by = shift_to_fit((positive, negative), limit)
    positive, negative = downscale(positive, by), downscale(negative, by)
    scale = point.scale - by

    bounds: list[float] = []
    counts: list[int] = []

    def add(bound: float, count: int) -> None:
        if bounds and bound <= bounds[-1]:
            counts[-1] += count  # rounding or underflow: fold into the bucket below
        else:
            bounds.append(bound)
            counts.append(count)

    carry = 0
    for i in range(len(negative.counts) - 1, -1, -1):
        bound = -upper_bound(negative.offset + i - 1, scale)
        if math.isinf(bound):
            carry += negative.counts[i]  # below every finite bound: first finite bucket
            continue
        add(bound, negative.counts[i] + carry)
        carry = 0
    if point.zero_count or negative.counts or carry:
        add(point.zero_threshold, point.zero_count + carry)
        carry = 0
    overflow = 0
    for i, count in enumerate(positive.counts):
        bound = upper_bound(positive.offset + i, scale)
        if math.isinf(bound):
            overflow += count
        else:
            add(bound, count + carry)
            carry = 0
    total = sum(counts) + overflow + carry
    overflow += carry + max(0, point.count - total)
    counts.append(overflow)
    return HistogramPoint(
        count=max(point.count, total),
        sum=point.sum,
        bounds=tuple(bounds),
        bucket_counts=tuple(counts),
        min=point.min,
        max=point.max,
    )
