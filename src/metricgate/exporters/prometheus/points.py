"""Point arithmetic for the scrape page: delta accumulation and unit scaling.

`accumulate(previous, delta)` adds a delta point to the running cumulative value of its series
(numbers, explicit histograms with the same bounds, exponential histograms at a common scale);
`scaled(value, factor)` moves a point to the base unit chosen by unit normalisation.

Invariant: points are immutable; both functions return new points (or the argument unchanged).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from functools import lru_cache

from metricgate.model import ExponentialHistogramPoint, HistogramPoint, PointValue, SummaryPoint
from metricgate.translate import merge_exponential


def scaled(value: PointValue, scale: float) -> PointValue:
    """`value` in a unit `scale` times smaller (see `metricgate.translate.units`).

    Exponential points come back unchanged: their buckets are scaled once converted.
    """
    if isinstance(value, float | int):
        return value * scale
    if isinstance(value, HistogramPoint):
        return scaled_histogram(value, scale)
    if isinstance(value, SummaryPoint):
        return SummaryPoint(
            value.count, value.sum * scale, tuple((q, v * scale) for q, v in value.quantiles)
        )
    return value


def scaled_histogram(point: HistogramPoint, scale: float) -> HistogramPoint:
    if scale == 1.0:
        return point
    return HistogramPoint(
        point.count,
        None if point.sum is None else point.sum * scale,
        _scaled_bounds(point.bounds, scale),
        point.bucket_counts,
        None if point.min is None else point.min * scale,
        None if point.max is None else point.max * scale,
    )


@lru_cache(maxsize=1024)
def _scaled_bounds(bounds: tuple[float, ...], scale: float) -> tuple[float, ...]:
    # One shared tuple per bounds and scale, so renderers can cache on bounds identity.
    return tuple(bound * scale for bound in bounds)


def accumulate(previous: PointValue, value: PointValue) -> PointValue:
    """`previous + value` for delta points; a point that cannot be added restarts the series."""
    if isinstance(value, float | int):
        return previous + value if isinstance(previous, float | int) else value
    if isinstance(value, HistogramPoint):
        if (
            not isinstance(previous, HistogramPoint)
            or len(previous.bucket_counts) != len(value.bucket_counts)
            or (previous.bounds is not value.bounds and previous.bounds != value.bounds)
        ):
            return value
        return HistogramPoint(
            previous.count + value.count,
            None if previous.sum is None or value.sum is None else previous.sum + value.sum,
            previous.bounds,
            tuple(map(operator.add, previous.bucket_counts, value.bucket_counts)),
            _pick(min, previous.min, value.min),
            _pick(max, previous.max, value.max),
        )
    if isinstance(value, ExponentialHistogramPoint):
        if not isinstance(previous, ExponentialHistogramPoint):
            return value
        return merge_exponential(previous, value)
    return value


def _pick(
    choose: Callable[[float, float], float], a: float | None, b: float | None
) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return choose(a, b)
