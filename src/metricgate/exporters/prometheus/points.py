"""Unit scaling for the scrape page: `scaled(value, factor)` moves a point to the base unit
chosen by unit normalisation (adding delta points is `metricgate.model.arithmetic.accumulate`).

Invariant: points are immutable; both functions return new points (or the argument unchanged).
"""

from __future__ import annotations

from functools import lru_cache

from metricgate.model import HistogramPoint, PointValue, SummaryPoint


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
