"""The in-memory metric model every metricgate component speaks.

See `metricgate.model.series` for identity (interned resources, scopes, metrics and series),
`metricgate.model.batch` for the batch layout and its invariants, `metricgate.model.arithmetic`
for adding and subtracting point values (with `metricgate.model.exponential` for exponential
bucket geometry) and `metricgate.model.delta` for cumulative -> delta per series.
"""

from metricgate.model.batch import FLAG_NO_RECORDED_VALUE, Batch, MetricPoints
from metricgate.model.points import (
    QUANTILE_RANGE,
    BucketRange,
    Exemplar,
    ExponentialHistogramPoint,
    HistogramPoint,
    PointValue,
    SummaryPoint,
    valid_quantile,
)
from metricgate.model.series import (
    INTERNER,
    Attributes,
    AttributeValue,
    Interner,
    Metric,
    MetricKind,
    Resource,
    Scope,
    Series,
    Temporality,
    sorted_attributes,
)

__all__ = [
    "FLAG_NO_RECORDED_VALUE",
    "INTERNER",
    "QUANTILE_RANGE",
    "AttributeValue",
    "Attributes",
    "Batch",
    "BucketRange",
    "Exemplar",
    "ExponentialHistogramPoint",
    "HistogramPoint",
    "Interner",
    "Metric",
    "MetricKind",
    "MetricPoints",
    "PointValue",
    "Resource",
    "Scope",
    "Series",
    "SummaryPoint",
    "Temporality",
    "sorted_attributes",
    "valid_quantile",
]
