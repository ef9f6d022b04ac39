"""Exponential histogram bucket geometry: boundaries, downscaling, and widening the zero bucket.

At scale s the base is 2**(2**-s) and positive bucket i covers (base**i, base**(i+1)]; negative
bucket i covers the same range mirrored. Bucket i at scale s holds buckets 2i and 2i+1 of scale
s+1, so going one scale down ("downscaling") maps index i to i >> 1 and adds the counts. The zero
bucket holds every value whose absolute value is at most `zero_threshold`.

Widening the zero bucket (`zero_threshold_for`, `widen`) follows Prometheus' native histograms
(`reconcileZeroBuckets`) and, in effect, the Collector's `deltatocumulative`: the threshold only
ever grows, every bucket lying below it moves into the zero count, and a populated bucket the
threshold would cut in two is swallowed whole (the threshold moves up to its upper boundary). The
total count never changes; only resolution near zero is given up. A smaller threshold can never
be restored, since the zero count does not say where below the threshold its values lie.

Invariant: every function here is pure and keeps the total count of what it is given; boundaries
are computed by `upper_bound` alone, so two scales agree exactly on the boundaries they share.
"""

from __future__ import annotations

import math
from typing import Final

from metricgate.model.points import BucketRange

EMPTY: Final = BucketRange(0, ())
"""A side without buckets (its offset means nothing)."""
MAX_BUCKETS: Final = 160
"""Most buckets per side, the OpenTelemetry SDKs' default `max_size`."""
_MIN_SPAN: Final = 2
"""A side straddling index 0 keeps buckets -1 and 0 however far it is downscaled."""


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


def trim(side: BucketRange) -> BucketRange:
    """`side` without zero counts at either end (`EMPTY` when every count is zero)."""
    counts = side.counts
    start, end = 0, len(counts)
    while start < end and not counts[start]:
        start += 1
    while end > start and not counts[end - 1]:
        end -= 1
    if start == 0 and end == len(counts):
        return side if counts else EMPTY
    if start == end:
        return EMPTY
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


def span(sides: tuple[BucketRange, ...], by: int) -> int:
    """Buckets `sides` need once downscaled by `by` (each side counted separately)."""
    total = 0
    for side in sides:
        if side.counts:
            total += ((side.offset + len(side.counts) - 1) >> by) - (side.offset >> by) + 1
    return total


def shift_to_fit(sides: tuple[BucketRange, ...], limit: int) -> int:
    """The smallest downscale after which `sides` together need at most `limit` buckets.

    A side straddling index 0 never shrinks below two buckets, so the search also stops once
    further downscaling changes nothing.
    """
    widest = max((abs(s.offset) + len(s.counts) for s in sides if s.counts), default=0)
    by = 0
    while span(sides, by) > limit and by <= widest.bit_length():
        by += 1
    return by


def fitting_shift(positive: BucketRange, negative: BucketRange, max_buckets: int) -> int:
    """The smallest downscale after which each side needs at most `max_buckets` buckets."""
    limit = max(_MIN_SPAN, max_buckets)
    return max(shift_to_fit((positive,), limit), shift_to_fit((negative,), limit))


def zero_threshold_for(threshold: float, sides: tuple[BucketRange, ...], scale: int) -> float:
    """The smallest threshold >= `threshold` that cuts no populated bucket of `sides` in two.

    `sides` are the positive and negative sides of every histogram that is to share the zero
    bucket, all at `scale`. Raising the threshold past one bucket may make it cut a bucket of
    another side, hence the loop until nothing moves.
    """
    if not threshold > 0:  # also NaN: no zero bucket wider than zero itself
        return 0.0
    while True:
        moved = False
        for side in sides:
            for index, count in enumerate(side.counts, side.offset):
                if not count:
                    continue
                if upper_bound(index - 1, scale) >= threshold:
                    break  # this bucket and every later one lie above the threshold
                upper = upper_bound(index, scale)
                if upper > threshold:
                    threshold, moved = upper, True
        if not moved:
            return threshold


def widen(side: BucketRange, threshold: float, scale: int) -> tuple[BucketRange, int]:
    """`side` without the buckets lying below `threshold`, and the count those buckets held.

    `threshold` comes from `zero_threshold_for`, so no populated bucket straddles it.
    """
    if not threshold > 0 or not side.counts:
        return side, 0
    moved = 0
    for i, count in enumerate(side.counts):
        if upper_bound(side.offset + i, scale) > threshold:
            if not i:
                return side, 0
            return trim(BucketRange(side.offset + i, side.counts[i:])), moved
        moved += count
    return EMPTY, moved
