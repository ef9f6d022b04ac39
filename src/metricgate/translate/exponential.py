"""Exponential (base-2) histograms for targets that only take explicit `le` buckets.

`to_explicit` turns an `ExponentialHistogramPoint` into a `HistogramPoint` whose bounds are the
exponential buckets' upper boundaries (negative buckets first, then the zero bucket, then the
positive buckets); `merge` adds two exponential points (delta accumulation) at a common scale.

Bucket i at scale s covers (base**i, base**(i+1)] with base = 2**(2**-s); negative bucket i covers
[-base**(i+1), -base**i). Explicit buckets are (previous le, le], so a value lying exactly on a
negative boundary lands one bucket higher than `le` says: that is inherent to the conversion.

Invariant: both functions keep the total count, and never produce more than `max_buckets` explicit
bounds: when a point spans more buckets, it is downscaled (pairs of buckets merged, scale - 1)
until it fits, which is exactly what an SDK does when its own bucket limit is reached.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from metricgate.model import BucketRange, ExponentialHistogramPoint, HistogramPoint

MAX_BUCKETS = 160
"""Default cap on explicit buckets, the OpenTelemetry SDKs' default `max_size`."""

_EMPTY = BucketRange(0, ())
_MIN_LIMIT = 4
"""Two sides straddling index 0 keep two buckets each however far they are downscaled."""


def _trim(side: BucketRange) -> BucketRange:
    """`side` without zero counts at either end (an empty range when all counts are zero)."""
    counts = side.counts
    start, end = 0, len(counts)
    while start < end and not counts[start]:
        start += 1
    while end > start and not counts[end - 1]:
        end -= 1
    if start == 0 and end == len(counts):
        return side
    if start == end:
        return _EMPTY
    return BucketRange(side.offset + start, counts[start:end])


def downscale(side: BucketRange, by: int) -> BucketRange:
    """`side` at a scale `by` lower: bucket index i becomes i >> by (floor), counts added."""
    if by <= 0 or not side.counts:
        return side
    first = side.offset >> by
    last = (side.offset + len(side.counts) - 1) >> by
    merged = [0] * (last - first + 1)
    for i, count in enumerate(side.counts):
        merged[((side.offset + i) >> by) - first] += count
    return BucketRange(first, tuple(merged))


def _span(sides: tuple[BucketRange, ...], by: int) -> int:
    """Buckets needed for `sides` once downscaled by `by` (counting each side separately)."""
    total = 0
    for side in sides:
        if side.counts:
            total += ((side.offset + len(side.counts) - 1) >> by) - (side.offset >> by) + 1
    return total


def _shift_to_fit(sides: tuple[BucketRange, ...], limit: int) -> int:
    """The smallest downscale after which `sides` need at most `limit` buckets.

    A side straddling index 0 never shrinks below two buckets (-1 and 0), so the loop also
    stops once further downscaling changes nothing.
    """
    widest = max((abs(s.offset) + len(s.counts) for s in sides if s.counts), default=0)
    by = 0
    while _span(sides, by) > limit and by <= widest.bit_length():
        by += 1
    return by


def _add(a: BucketRange, b: BucketRange) -> BucketRange:
    if not a.counts:
        return b
    if not b.counts:
        return a
    first = min(a.offset, b.offset)
    last = max(a.offset + len(a.counts), b.offset + len(b.counts))
    merged = [0] * (last - first)
    for side in (a, b):
        base = side.offset - first
        for i, count in enumerate(side.counts):
            merged[base + i] += count
    return BucketRange(first, tuple(merged))


def merge(
    a: ExponentialHistogramPoint, b: ExponentialHistogramPoint, max_buckets: int = MAX_BUCKETS
) -> ExponentialHistogramPoint:
    """The sum of two points: both brought to a common scale small enough for `max_buckets`."""
    scale = min(a.scale, b.scale)
    sides = (
        downscale(_trim(a.positive), a.scale - scale),
        downscale(_trim(b.positive), b.scale - scale),
        downscale(_trim(a.negative), a.scale - scale),
        downscale(_trim(b.negative), b.scale - scale),
    )
    positive = _add(sides[0], sides[1])
    negative = _add(sides[2], sides[3])
    by = _shift_to_fit((positive, negative), max(_MIN_LIMIT, max_buckets - 1))
    sums = None if a.sum is None or b.sum is None else a.sum + b.sum
    return ExponentialHistogramPoint(
        count=a.count + b.count,
        sum=sums,
        scale=scale - by,
        zero_count=a.zero_count + b.zero_count,
        positive=downscale(positive, by),
        negative=downscale(negative, by),
        zero_threshold=max(a.zero_threshold, b.zero_threshold),
        min=_pick(min, a.min, b.min),
        max=_pick(max, a.max, b.max),
    )


def _pick(
    choose: Callable[[float, float], float], x: float | None, y: float | None
) -> float | None:
    if x is None:
        return y
    if y is None:
        return x
    return choose(x, y)


def upper_bound(index: int, scale: int) -> float:
    """The upper boundary base**(index + 1) of positive bucket `index`; inf when too large."""
    exponent = index + 1
    try:
        if scale <= 0:
            return math.ldexp(1.0, exponent << -scale)
        whole, part = divmod(exponent, 1 << scale)
        return math.ldexp(math.exp2(part / (1 << scale)), whole)
    except OverflowError:
        return math.inf


def to_explicit(point: ExponentialHistogramPoint, max_buckets: int = MAX_BUCKETS) -> HistogramPoint:
    """`point` as explicit buckets with at most `max_buckets` bounds (see module docstring)."""
    positive, negative = _trim(point.positive), _trim(point.negative)
    limit = max(_MIN_LIMIT, max_buckets - 1)  # one bound is kept for the zero bucket
    by = _shift_to_fit((positive, negative), limit)
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
