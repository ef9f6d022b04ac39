"""Point values that are more than one number: histograms, exponential histograms, summaries.

Number points (gauges and sums) are plain floats in `MetricPoints.values`; the richer kinds are the
small immutable objects below, one per point. Bucket bounds are shared tuples: a receiver hands the
same `bounds` object to every point of a metric, so exporters can cache on it by identity.
"""

from __future__ import annotations

from dataclasses import dataclass

from metricgate.model.series import Attributes


@dataclass(frozen=True, slots=True)
class Exemplar:
    """A sampled measurement with its trace context (OTLP `Exemplar`)."""

    value: float
    time_unix_nano: int
    trace_id: str = ""
    span_id: str = ""
    filtered_attributes: Attributes = ()


@dataclass(frozen=True, slots=True)
class HistogramPoint:
    """An explicit-bucket histogram point.

    `bucket_counts[i]` counts values in (bounds[i-1], bounds[i]]; the last count is the overflow
    bucket above the last bound, so `len(bucket_counts) == len(bounds) + 1` (or 0 when the point
    carries no buckets). Counts are per bucket, not cumulative.
    """

    count: int
    sum: float | None
    bounds: tuple[float, ...]
    bucket_counts: tuple[int, ...]
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True, slots=True)
class BucketRange:
    """One side of an exponential histogram: `counts[i]` is bucket index `offset + i`."""

    offset: int
    counts: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ExponentialHistogramPoint:
    """An exponential (base-2) histogram point: bucket i covers (base**i, base**(i+1)]."""

    count: int
    sum: float | None
    scale: int
    zero_count: int
    positive: BucketRange
    negative: BucketRange
    zero_threshold: float = 0.0
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True, slots=True)
class SummaryPoint:
    """A summary point: count, sum and (quantile, value) pairs sorted by quantile."""

    count: int
    sum: float
    quantiles: tuple[tuple[float, float], ...]


PointValue = float | HistogramPoint | ExponentialHistogramPoint | SummaryPoint

QUANTILE_RANGE = "summary quantile is outside [0, 1]"


def valid_quantile(quantile: float) -> bool:
    """The one quantile rule every receiver applies (OTLP's and OpenMetrics'): a summary
    quantile lies in [0, 1]; NaN does not."""
    return 0.0 <= quantile <= 1.0
