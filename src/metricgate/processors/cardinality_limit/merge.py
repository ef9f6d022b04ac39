"""Point arithmetic for overflow series: adding points and taking a cumulative point's increase.

`add(a, b)` combines two points of one metric (numbers, explicit and exponential histograms,
summaries); `increase(current, previous, monotonic)` is what a cumulative stream gained since
`previous`, or all of `current` after a reset. Exponential histograms are aligned to the coarser
scale. Summaries keep count and sum only: quantiles cannot be combined.

Invariant: both functions are pure (points are immutable); `MergeError` means "cannot combine".
"""

from __future__ import annotations

import operator
from collections.abc import Callable

from metricgate.model import (
    BucketRange,
    ExponentialHistogramPoint,
    HistogramPoint,
    PointValue,
    SummaryPoint,
)


class MergeError(ValueError):
    """Two points cannot be combined (different bucket bounds or kinds)."""


def add(a: PointValue, b: PointValue) -> PointValue:
    """The point holding both `a` and `b` (sums, counts and buckets added)."""
    if isinstance(a, float | int) and isinstance(b, float | int):
        return a + b
    if isinstance(a, HistogramPoint) and isinstance(b, HistogramPoint):
        return _add_histograms(a, b)
    if isinstance(a, ExponentialHistogramPoint) and isinstance(b, ExponentialHistogramPoint):
        return _add_exponential(a, b)
    if isinstance(a, SummaryPoint) and isinstance(b, SummaryPoint):
        return SummaryPoint(a.count + b.count, a.sum + b.sum, ())
    raise MergeError(f"cannot add {type(a).__name__} and {type(b).__name__}")


def increase(current: PointValue, previous: PointValue | None, monotonic: bool) -> PointValue:
    """What a cumulative stream gained from `previous` to `current`.

    A decrease of a monotonic value (or of any count or bucket) is a reset: the increase is all
    of `current`. Histogram min/max are the current point's (cumulative min/max), so adding the
    increases keeps them right.
    """
    if previous is None:
        return current
    if isinstance(current, float | int) and isinstance(previous, float | int):
        if monotonic and current < previous:
            return current
        return current - previous
    if isinstance(current, HistogramPoint) and isinstance(previous, HistogramPoint):
        return _histogram_increase(current, previous)
    if isinstance(current, ExponentialHistogramPoint) and isinstance(
        previous, ExponentialHistogramPoint
    ):
        return _exponential_increase(current, previous)
    if isinstance(current, SummaryPoint) and isinstance(previous, SummaryPoint):
        if current.count < previous.count:
            return SummaryPoint(current.count, current.sum, ())
        return SummaryPoint(current.count - previous.count, current.sum - previous.sum, ())
    raise MergeError(f"cannot subtract {type(previous).__name__} from {type(current).__name__}")


def _opt(a: float | None, b: float | None, pick: Callable[[float, float], float]) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return pick(a, b)


def _opt_sum(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a + b


def _add_histograms(a: HistogramPoint, b: HistogramPoint) -> HistogramPoint:
    if a.bounds is not b.bounds and a.bounds != b.bounds:
        raise MergeError("histogram bucket bounds differ")
    if len(a.bucket_counts) != len(b.bucket_counts):
        raise MergeError("one histogram point has buckets, the other has none")
    return HistogramPoint(
        a.count + b.count,
        _opt_sum(a.sum, b.sum),
        a.bounds,
        tuple(map(operator.add, a.bucket_counts, b.bucket_counts)),
        _opt(a.min, b.min, min),
        _opt(a.max, b.max, max),
    )


def _histogram_increase(current: HistogramPoint, previous: HistogramPoint) -> HistogramPoint:
    buckets = tuple(map(operator.sub, current.bucket_counts, previous.bucket_counts))
    reset = (
        current.count < previous.count
        or (current.bounds is not previous.bounds and current.bounds != previous.bounds)
        or len(current.bucket_counts) != len(previous.bucket_counts)
        or any(c < 0 for c in buckets)
    )
    if reset:
        return current
    return HistogramPoint(
        current.count - previous.count,
        None if current.sum is None or previous.sum is None else current.sum - previous.sum,
        current.bounds,
        buckets,
        current.min,
        current.max,
    )


def _downscale(side: BucketRange, by: int) -> dict[int, int]:
    """Bucket index -> count at a scale `by` steps coarser (two buckets merge per step)."""
    out: dict[int, int] = {}
    for i, count in enumerate(side.counts):
        if count:
            index = (side.offset + i) >> by
            out[index] = out.get(index, 0) + count
    return out


def _to_range(buckets: dict[int, int]) -> BucketRange:
    if not buckets:
        return BucketRange(0, ())
    low, high = min(buckets), max(buckets)
    return BucketRange(low, tuple(buckets.get(i, 0) for i in range(low, high + 1)))


def _combine(a: dict[int, int], b: dict[int, int], sign: int) -> dict[int, int]:
    out = dict(a)
    for index, count in b.items():
        out[index] = out.get(index, 0) + sign * count
    return out


def _add_exponential(
    a: ExponentialHistogramPoint, b: ExponentialHistogramPoint
) -> ExponentialHistogramPoint:
    scale = min(a.scale, b.scale)
    positive = _combine(
        _downscale(a.positive, a.scale - scale), _downscale(b.positive, b.scale - scale), 1
    )
    negative = _combine(
        _downscale(a.negative, a.scale - scale), _downscale(b.negative, b.scale - scale), 1
    )
    return ExponentialHistogramPoint(
        a.count + b.count,
        _opt_sum(a.sum, b.sum),
        scale,
        a.zero_count + b.zero_count,
        _to_range(positive),
        _to_range(negative),
        max(a.zero_threshold, b.zero_threshold),
        _opt(a.min, b.min, min),
        _opt(a.max, b.max, max),
    )


def _exponential_increase(
    current: ExponentialHistogramPoint, previous: ExponentialHistogramPoint
) -> ExponentialHistogramPoint:
    scale = min(current.scale, previous.scale)
    up, down = current.scale - scale, previous.scale - scale
    positive = _combine(_downscale(current.positive, up), _downscale(previous.positive, down), -1)
    negative = _combine(_downscale(current.negative, up), _downscale(previous.negative, down), -1)
    zero = current.zero_count - previous.zero_count
    if (
        current.count < previous.count
        or zero < 0
        or any(c < 0 for c in positive.values())
        or any(c < 0 for c in negative.values())
    ):
        return current
    return ExponentialHistogramPoint(
        current.count - previous.count,
        None if current.sum is None or previous.sum is None else current.sum - previous.sum,
        scale,
        zero,
        _to_range({i: c for i, c in positive.items() if c}),
        _to_range({i: c for i, c in negative.items() if c}),
        current.zero_threshold,
        current.min,
        current.max,
    )
