"""Adding and subtracting point values: the one implementation every component uses.

`add(a, b)` is the point holding both (deltas accumulated into a cumulative, folded series added
into an overflow series); `subtract(current, previous)` is what a cumulative point gained since an
earlier one (cumulative -> delta); `accumulate(total, delta)` adds, or restarts from `delta` when
the two do not combine. Per kind:

- numbers: plain `+` and `-` (whether a decrease is a reset is the caller's policy, see
  `metricgate.model.delta`);
- explicit histograms: bucket-wise, only with the same bounds (and both with buckets, or neither);
- exponential histograms: brought to the coarser of the two scales (downscaling, as the
  OpenTelemetry data model prescribes for merging), then to one zero threshold, then bucket-wise;
  `add` downscales further while a side would need more than `max_buckets` buckets;
- summaries: count and sum only; quantiles cannot be combined, so the result has none.

Zero threshold: two exponential points with different `zero_threshold` are brought to the larger
one, widened so that it cuts no populated bucket, and every bucket below it moves into the zero
count (`metricgate.model.exponential`); that is what Prometheus does when it adds native
histograms and what the Collector's `deltatocumulative` does. Refusing to combine different
thresholds would restart a cumulative stream whenever an SDK changes its threshold, and taking the
larger threshold without moving the buckets below it would leave buckets inside the zero bucket.
The same rule applies when a threshold is not 0 but equal on both sides, so that the order in
which points are added does not matter: `add` is commutative, and associative exactly when every
threshold is 0 or every scale is the same. When both vary, two orders can differ only in how far
the zero bucket got widened (a bucket taken in at a finer scale may, downscaled first, have
pushed the threshold further): same count, sum and values, equal once both share the wider zero
bucket. Prometheus' native histograms behave the same.

Empty points (count 0, nothing in any bucket) are neutral: their scale, threshold, min, max and
missing sum do not constrain the result. Otherwise a sum, min or max is known only when both
sides know it; a difference has no min or max (unknown for the interval).

Invariants: inputs are never changed and results are new immutable points; `None` means "these do
not combine" (different kinds or bucket bounds; for `subtract` also a count or bucket that went
down), never an exception, so callers on the hot path pick their policy with one `is None`. `add`
and `subtract` keep counts exactly: `subtract(add(a, b), b)` is `a` at the scale and threshold of
the sum (see the property tests in tests/model/test_arithmetic.py).
"""

from __future__ import annotations

import operator
from collections.abc import Callable

from metricgate.model.exponential import (
    EMPTY,
    MAX_BUCKETS,
    downscale,
    fitting_shift,
    trim,
    widen,
    zero_threshold_for,
)
from metricgate.model.points import (
    BucketRange,
    ExponentialHistogramPoint,
    HistogramPoint,
    PointValue,
    SummaryPoint,
)

__all__ = [
    "accumulate",
    "add",
    "add_exponential",
    "add_histograms",
    "add_summaries",
    "aligned",
    "combinable",
    "subtract",
    "subtract_exponential",
    "subtract_histograms",
    "subtract_summaries",
]


def add(a: PointValue, b: PointValue, max_buckets: int | None = MAX_BUCKETS) -> PointValue | None:
    """The point holding both `a` and `b`, or None when they do not combine."""
    if isinstance(a, float | int) and isinstance(b, float | int):
        return a + b
    if isinstance(a, HistogramPoint) and isinstance(b, HistogramPoint):
        return add_histograms(a, b)
    if isinstance(a, ExponentialHistogramPoint) and isinstance(b, ExponentialHistogramPoint):
        return add_exponential(a, b, max_buckets)
    if isinstance(a, SummaryPoint) and isinstance(b, SummaryPoint):
        return add_summaries(a, b)
    return None


def subtract(current: PointValue, previous: PointValue) -> PointValue | None:
    """What `current` gained since `previous`, or None when it cannot have come from it."""
    if isinstance(current, float | int) and isinstance(previous, float | int):
        return current - previous
    if isinstance(current, HistogramPoint) and isinstance(previous, HistogramPoint):
        return subtract_histograms(current, previous)
    if isinstance(current, ExponentialHistogramPoint) and isinstance(
        previous, ExponentialHistogramPoint
    ):
        return subtract_exponential(current, previous)
    if isinstance(current, SummaryPoint) and isinstance(previous, SummaryPoint):
        return subtract_summaries(current, previous)
    return None


def accumulate(total: PointValue, delta: PointValue) -> PointValue:
    """`total + delta`; `delta` alone when they do not combine (the stream starts over)."""
    if delta.__class__ is float and total.__class__ is float:
        return total + delta  # the common case: two floats
    found = add(total, delta)
    return delta if found is None else found


def combinable(a: PointValue, b: PointValue) -> bool:
    """True when `a` and `b` have layouts that add and subtract (not: whether counts went down)."""
    if isinstance(a, HistogramPoint) and isinstance(b, HistogramPoint):
        return _same_bounds(a, b)
    if isinstance(a, float | int) and isinstance(b, float | int):
        return True
    return type(a) is type(b)


# -- explicit histograms ---------------------------------------------------------------------


def add_histograms(a: HistogramPoint, b: HistogramPoint) -> HistogramPoint | None:
    """`a + b` bucket-wise; None when their bounds differ."""
    if not _same_bounds(a, b):
        if _empty_histogram(b):
            return a
        return b if _empty_histogram(a) else None
    return HistogramPoint(
        a.count + b.count,
        _known_sum(a.sum, b.sum, a.count, b.count),
        a.bounds,
        tuple(map(operator.add, a.bucket_counts, b.bucket_counts)),
        _extreme(min, a.min, b.min, a.count, b.count),
        _extreme(max, a.max, b.max, a.count, b.count),
    )


def subtract_histograms(current: HistogramPoint, previous: HistogramPoint) -> HistogramPoint | None:
    """What `current` gained since `previous`; None for other bounds or a count that went down."""
    if not _same_bounds(current, previous) or current.count < previous.count:
        return None
    counts = tuple(map(operator.sub, current.bucket_counts, previous.bucket_counts))
    if any(c < 0 for c in counts):
        return None
    return HistogramPoint(
        current.count - previous.count,
        _difference(current.sum, previous.sum, current.count, previous.count),
        current.bounds,
        counts,
    )


def _same_bounds(a: HistogramPoint, b: HistogramPoint) -> bool:
    return (a.bounds is b.bounds or a.bounds == b.bounds) and len(a.bucket_counts) == len(
        b.bucket_counts
    )


def _empty_histogram(point: HistogramPoint) -> bool:
    return not point.count and not any(point.bucket_counts)


# -- exponential histograms ------------------------------------------------------------------


def aligned(
    a: ExponentialHistogramPoint, b: ExponentialHistogramPoint
) -> tuple[ExponentialHistogramPoint, ExponentialHistogramPoint]:
    """`a` and `b` at their common scale and zero threshold (see the module docstring)."""
    scale = _common_scale(a, b)
    sides = (
        downscale(a.positive, a.scale - scale),
        downscale(a.negative, a.scale - scale),
        downscale(b.positive, b.scale - scale),
        downscale(b.negative, b.scale - scale),
    )
    threshold = max(_threshold(a), _threshold(b))
    threshold = zero_threshold_for(threshold, sides, scale)
    return (
        _at(a, scale, threshold, sides[0], sides[1]),
        _at(b, scale, threshold, sides[2], sides[3]),
    )


def add_exponential(
    a: ExponentialHistogramPoint,
    b: ExponentialHistogramPoint,
    max_buckets: int | None = MAX_BUCKETS,
) -> ExponentialHistogramPoint:
    """`a + b` at a common scale and zero threshold, each side within `max_buckets` (None: any)."""
    a, b = aligned(a, b)
    positive = _combine(a.positive, b.positive, 1)
    negative = _combine(a.negative, b.negative, 1)
    assert positive is not None and negative is not None  # adding never goes negative
    scale, threshold, zero_count = a.scale, a.zero_threshold, a.zero_count + b.zero_count
    if max_buckets is not None:
        by = fitting_shift(positive, negative, max_buckets)
        if by:
            scale -= by
            positive, negative = downscale(positive, by), downscale(negative, by)
            # A coarser bucket may now straddle the threshold: widen again.
            threshold = zero_threshold_for(threshold, (positive, negative), scale)
            positive, below = widen(positive, threshold, scale)
            zero_count += below
            negative, below = widen(negative, threshold, scale)
            zero_count += below
    return ExponentialHistogramPoint(
        a.count + b.count,
        _known_sum(a.sum, b.sum, a.count, b.count),
        scale,
        zero_count,
        positive,
        negative,
        threshold,
        _extreme(min, a.min, b.min, a.count, b.count),
        _extreme(max, a.max, b.max, a.count, b.count),
    )


def subtract_exponential(
    current: ExponentialHistogramPoint, previous: ExponentialHistogramPoint
) -> ExponentialHistogramPoint | None:
    """What `current` gained since `previous`; None when a count went down."""
    if current.count < previous.count:
        return None
    current, previous = aligned(current, previous)
    zero_count = current.zero_count - previous.zero_count
    positive = _combine(current.positive, previous.positive, -1)
    negative = _combine(current.negative, previous.negative, -1)
    if zero_count < 0 or positive is None or negative is None:
        return None
    return ExponentialHistogramPoint(
        current.count - previous.count,
        _difference(current.sum, previous.sum, current.count, previous.count),
        current.scale,
        zero_count,
        positive,
        negative,
        current.zero_threshold,
    )


def _empty_exponential(point: ExponentialHistogramPoint) -> bool:
    return (
        not point.count
        and not point.zero_count
        and not any(point.positive.counts)
        and not any(point.negative.counts)
    )


def _common_scale(a: ExponentialHistogramPoint, b: ExponentialHistogramPoint) -> int:
    # An empty point holds nothing a finer scale would lose: it does not coarsen the other.
    if _empty_exponential(a) and not _empty_exponential(b):
        return b.scale
    if _empty_exponential(b) and not _empty_exponential(a):
        return a.scale
    return min(a.scale, b.scale)


def _threshold(point: ExponentialHistogramPoint) -> float:
    return 0.0 if _empty_exponential(point) else point.zero_threshold


def _at(
    point: ExponentialHistogramPoint,
    scale: int,
    threshold: float,
    positive: BucketRange,
    negative: BucketRange,
) -> ExponentialHistogramPoint:
    """`point` with its sides (already at `scale`) widened to `threshold`, ends trimmed."""
    positive, moved_up = widen(trim(positive), threshold, scale)
    negative, moved_down = widen(trim(negative), threshold, scale)
    return ExponentialHistogramPoint(
        point.count,
        point.sum,
        scale,
        point.zero_count + moved_up + moved_down,
        positive,
        negative,
        threshold,
        point.min,
        point.max,
    )


def _combine(a: BucketRange, b: BucketRange, sign: int) -> BucketRange | None:
    """`a + sign * b` bucket-wise, ends trimmed; None when a difference goes negative."""
    if not b.counts:
        return a
    if not a.counts:
        if sign > 0:
            return b
        a = EMPTY
    low = min(a.offset, b.offset) if a.counts else b.offset
    high = max(a.offset + len(a.counts), b.offset + len(b.counts))
    out = [0] * (high - low)
    for i, count in enumerate(a.counts, a.offset - low):
        out[i] += count
    for i, count in enumerate(b.counts, b.offset - low):
        out[i] += sign * count
    if sign < 0 and any(c < 0 for c in out):
        return None
    return trim(BucketRange(low, tuple(out)))


# -- summaries -------------------------------------------------------------------------------


def add_summaries(a: SummaryPoint, b: SummaryPoint) -> SummaryPoint:
    """Count and sum added; quantiles of two summaries cannot be combined and are left out."""
    return SummaryPoint(a.count + b.count, a.sum + b.sum, ())


def subtract_summaries(current: SummaryPoint, previous: SummaryPoint) -> SummaryPoint | None:
    """Count and sum gained (no quantiles); None when the count went down."""
    if current.count < previous.count:
        return None
    return SummaryPoint(current.count - previous.count, current.sum - previous.sum, ())


# -- optional fields -------------------------------------------------------------------------


def _known_sum(a: float | None, b: float | None, a_count: int, b_count: int) -> float | None:
    """`a + b` when both are known; an empty side's missing sum counts as 0."""
    if a is None:
        return b if not a_count else None
    if b is None:
        return a if not b_count else None
    return a + b


def _difference(
    current: float | None, previous: float | None, current_count: int, previous_count: int
) -> float | None:
    """`current - previous` when both are known; an empty side's missing sum counts as 0."""
    if previous is None:
        return current if not previous_count else None
    if current is None:
        return -previous if not current_count else None
    return current - previous


def _extreme(
    pick: Callable[[float, float], float],
    a: float | None,
    b: float | None,
    a_count: int,
    b_count: int,
) -> float | None:
    """The min (or max) of both sides: known only when every non-empty side knows its own."""
    if a_count and b_count:
        return None if a is None or b is None else pick(a, b)
    if a_count:
        return a
    if b_count or a is None:
        return b
    return a if b is None else pick(a, b)
