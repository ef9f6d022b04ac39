"""Adding and subtracting the point values of one stream, for temporality conversion.

Number points are plain floats and need nothing here. Histograms add and subtract bucket-wise and
must share their bounds; exponential histograms are brought to the coarser scale first (as the
OpenTelemetry data model prescribes for merging) and must share their zero threshold.

Invariant: inputs are never changed and results are new immutable points. `None` means the two
values do not combine (different bucket layouts, or a cumulative value that went down); the
caller restarts the stream.
"""

from __future__ import annotations

import operator

from metricgate.model import BucketRange, ExponentialHistogramPoint, HistogramPoint, PointValue

_EMPTY = BucketRange(0, ())


def same_layout(a: PointValue, b: PointValue) -> bool:
    """True when `a` and `b` have bucket layouts that add and subtract."""
    if isinstance(a, HistogramPoint) and isinstance(b, HistogramPoint):
        return a.bounds == b.bounds and len(a.bucket_counts) == len(b.bucket_counts)
    if isinstance(a, ExponentialHistogramPoint) and isinstance(b, ExponentialHistogramPoint):
        return a.zero_threshold == b.zero_threshold
    return type(a) is type(b)


def add_histograms(total: HistogramPoint, delta: HistogramPoint) -> HistogramPoint | None:
    """`total` plus `delta`; min and max are kept only while both sides know them."""
    if not same_layout(total, delta):
        return None
    return HistogramPoint(
        total.count + delta.count,
        _add(total.sum, delta.sum),
        total.bounds,
        tuple(map(operator.add, total.bucket_counts, delta.bucket_counts)),
        None if total.min is None or delta.min is None else min(total.min, delta.min),
        None if total.max is None or delta.max is None else max(total.max, delta.max),
    )


def subtract_histograms(current: HistogramPoint, previous: HistogramPoint) -> HistogramPoint | None:
    """What `current` gained since `previous`; min and max are unknown for the interval."""
    if not same_layout(current, previous) or current.count < previous.count:
        return None
    counts = tuple(map(operator.sub, current.bucket_counts, previous.bucket_counts))
    if any(c < 0 for c in counts):
        return None
    return HistogramPoint(
        current.count - previous.count,
        None if current.sum is None or previous.sum is None else current.sum - previous.sum,
        current.bounds,
        counts,
    )


def add_exponential(
    total: ExponentialHistogramPoint, delta: ExponentialHistogramPoint
) -> ExponentialHistogramPoint | None:
    """`total` plus `delta`, at the coarser of their two scales."""
    if not same_layout(total, delta):
        return None
    scale = min(total.scale, delta.scale)
    positive = _combine(
        downscale(total.positive, total.scale - scale),
        downscale(delta.positive, delta.scale - scale),
        1,
    )
    negative = _combine(
        downscale(total.negative, total.scale - scale),
        downscale(delta.negative, delta.scale - scale),
        1,
    )
    assert positive is not None and negative is not None
    return ExponentialHistogramPoint(
        total.count + delta.count,
        _add(total.sum, delta.sum),
        scale,
        total.zero_count + delta.zero_count,
        positive,
        negative,
        total.zero_threshold,
        None if total.min is None or delta.min is None else min(total.min, delta.min),
        None if total.max is None or delta.max is None else max(total.max, delta.max),
    )


def subtract_exponential(
    current: ExponentialHistogramPoint, previous: ExponentialHistogramPoint
) -> ExponentialHistogramPoint | None:
    """What `current` gained since `previous` (a cumulative only ever coarsens its scale)."""
    if (
        not same_layout(current, previous)
        or current.scale > previous.scale
        or current.count < previous.count
        or current.zero_count < previous.zero_count
    ):
        return None
    by = previous.scale - current.scale
    positive = _combine(current.positive, downscale(previous.positive, by), -1)
    negative = _combine(current.negative, downscale(previous.negative, by), -1)
    if positive is None or negative is None:
        return None
    return ExponentialHistogramPoint(
        current.count - previous.count,
        None if current.sum is None or previous.sum is None else current.sum - previous.sum,
        current.scale,
        current.zero_count - previous.zero_count,
        positive,
        negative,
        current.zero_threshold,
    )


def downscale(buckets: BucketRange, by: int) -> BucketRange:
    """The same counts at a scale `by` steps coarser (bucket i becomes i >> by)."""
    if by == 0 or not buckets.counts:
        return buckets
    merged: dict[int, int] = {}
    for i, count in enumerate(buckets.counts, buckets.offset):
        index = i >> by
        merged[index] = merged.get(index, 0) + count
    low, high = min(merged), max(merged)
    return BucketRange(low, tuple(merged.get(i, 0) for i in range(low, high + 1)))


def _combine(a: BucketRange, b: BucketRange, sign: int) -> BucketRange | None:
    """`a + sign * b` bucket-wise; None when a subtraction goes negative."""
    if not b.counts:
        return a
    if not a.counts and sign > 0:
        return b
    if not a.counts:
        a = _EMPTY
    low = min(a.offset, b.offset) if a.counts else b.offset
    high = max(a.offset + len(a.counts), b.offset + len(b.counts))
    out = [0] * (high - low)
    for i, count in enumerate(a.counts, a.offset - low):
        out[i] += count
    for i, count in enumerate(b.counts, b.offset - low):
        out[i] += sign * count
    if sign < 0 and any(c < 0 for c in out):
        return None
    return BucketRange(low, tuple(out))


def _add(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a + b
