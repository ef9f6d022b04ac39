"""Build model batches directly, for tests that do not need a real client."""

from __future__ import annotations

from metricgate.model import (
    INTERNER,
    Batch,
    Metric,
    MetricKind,
    MetricPoints,
    Temporality,
    sorted_attributes,
)


def metric(
    name: str = "requests",
    kind: MetricKind = MetricKind.SUM,
    unit: str = "",
    temporality: Temporality = Temporality.CUMULATIVE,
    monotonic: bool = True,
    service: str = "svc",
    description: str = "",
) -> Metric:
    resource = INTERNER.intern_resource(sorted_attributes({"service.name": service}))
    scope = INTERNER.intern_scope("test.scope", "1.0")
    if kind in (MetricKind.GAUGE, MetricKind.SUMMARY):
        temporality, monotonic = Temporality.UNSPECIFIED, False
    return INTERNER.intern_metric(
        resource, scope, name, unit, kind, temporality, monotonic, description
    )


def number_batch(
    values: dict[str, float],
    name: str = "requests",
    timestamp: int = 1_700_000_000_000_000_000,
    **metric_args: object,
) -> Batch:
    """One metric; one point per entry of `values`, keyed by the value of attribute `k`."""
    m = metric(name, **metric_args)  # type: ignore[arg-type]
    points = MetricPoints(m)
    for key, value in values.items():
        points.append(INTERNER.intern_series(m, (("k", key),)), float(value), timestamp)
    return Batch([points])
