"""Build model objects for the Prometheus translation and exporter tests, without a client."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping

from metricgate.exporters.prometheus.render import render
from metricgate.exporters.prometheus.store import Store
from metricgate.model import (
    INTERNER,
    AttributeValue,
    Batch,
    BucketRange,
    Exemplar,
    ExponentialHistogramPoint,
    Metric,
    MetricKind,
    MetricPoints,
    PointValue,
    Resource,
    Scope,
    Temporality,
    sorted_attributes,
)
from metricgate.translate import PrometheusTranslator

T0 = 1_700_000_000_000_000_000
"""A point timestamp (ns): 2023-11-14T22:13:20Z."""


def resource(attributes: Mapping[str, AttributeValue] | None = None) -> Resource:
    return INTERNER.intern_resource(
        sorted_attributes(dict({"service.name": "svc"} if attributes is None else attributes))
    )


def scope(name: str = "lib", version: str = "1.0", **attributes: AttributeValue) -> Scope:
    return INTERNER.intern_scope(name, version, sorted_attributes(attributes))


def metric(
    name: str,
    kind: MetricKind = MetricKind.GAUGE,
    unit: str = "",
    temporality: Temporality = Temporality.CUMULATIVE,
    monotonic: bool = True,
    description: str = "",
    res: Resource | None = None,
    scp: Scope | None = None,
) -> Metric:
    if kind in (MetricKind.GAUGE, MetricKind.SUMMARY):
        temporality, monotonic = Temporality.UNSPECIFIED, False
    return INTERNER.intern_metric(
        res or resource(),
        scp or scope(),
        name,
        unit,
        kind,
        temporality,
        monotonic,
        description,
    )


def points(
    m: Metric,
    *rows: tuple[Mapping[str, AttributeValue], PointValue],
    timestamp: int = T0,
    start: int = 0,
    flags: int = 0,
    exemplars: Mapping[int, tuple[Exemplar, ...]] | None = None,
) -> MetricPoints:
    """One group: a point per (attributes, value) row, all with the same timestamp and flags."""
    group = MetricPoints(m)
    for attributes, value in rows:
        series = INTERNER.intern_series(m, sorted_attributes(dict(attributes)))
        group.append(series, value, timestamp, start, flags)
    for index, found in (exemplars or {}).items():
        group.add_exemplars(index, found)
    return group


def batch(*groups: MetricPoints) -> Batch:
    return Batch(list(groups))


def store(**options: object) -> Store:
    """A store whose translator leaves scope labels out (pages stay short) unless asked."""
    options.setdefault("enable_scope_labels", False)
    store_options = {
        k: options.pop(k)
        for k in ("exponential", "keep_timestamps", "keep_exemplars")
        if k in options
    }
    return Store(PrometheusTranslator(**options), **store_options)  # type: ignore[arg-type]


def page(s: Store, *, openmetrics: bool = False, timestamps: bool = False) -> str:
    return "".join(render(s, openmetrics=openmetrics, timestamps=timestamps))


def index_of(value: float, scale: int) -> int:
    """The exponential bucket index of |value| > 0 at `scale` (the specification's mapping)."""
    magnitude = abs(value)
    mantissa, exponent = math.frexp(magnitude)  # magnitude = mantissa * 2**exponent
    if scale <= 0:
        power_of_two = mantissa == 0.5
        return (exponent - 2 if power_of_two else exponent - 1) >> -scale
    if mantissa == 0.5:
        return ((exponent - 1) << scale) - 1
    return math.ceil(math.log2(magnitude) * (1 << scale)) - 1


def exponential_point(values: list[float], scale: int) -> ExponentialHistogramPoint:
    """The exponential histogram an SDK would build from `values` at `scale`."""
    positive = Counter(index_of(v, scale) for v in values if v > 0)
    negative = Counter(index_of(v, scale) for v in values if v < 0)

    def side(counts: Counter[int]) -> BucketRange:
        if not counts:
            return BucketRange(0, ())
        low, high = min(counts), max(counts)
        return BucketRange(low, tuple(counts.get(i, 0) for i in range(low, high + 1)))

    return ExponentialHistogramPoint(
        count=len(values),
        sum=math.fsum(values),
        scale=scale,
        zero_count=sum(1 for v in values if v == 0),
        positive=side(positive),
        negative=side(negative),
    )
