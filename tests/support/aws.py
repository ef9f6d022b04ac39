"""AWS test data: dummy credentials for moto and one-series batches for the CloudWatch exporter
tests (the moto fixtures are in `tests/conftest.py`)."""

from __future__ import annotations

from metricgate.model import (
    INTERNER,
    Batch,
    MetricKind,
    MetricPoints,
    PointValue,
    Temporality,
    sorted_attributes,
)

DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
"""Credentials moto accepts; set in the environment so the machine's AWS profile is never used."""

RESOURCE = INTERNER.intern_resource(sorted_attributes({"service.name": "svc"}))


def one_series_batch(
    scope: str,
    name: str,
    kind: MetricKind,
    points: list[tuple[PointValue, int, int]],
    temporality: Temporality = Temporality.UNSPECIFIED,
    unit: str = "",
    attributes: tuple[tuple[str, str], ...] = (("host", "h1"),),
) -> Batch:
    """One monotonic metric of `RESOURCE` with one series: (value, time, start time) points."""
    metric = INTERNER.intern_metric(
        RESOURCE, INTERNER.intern_scope(scope), name, unit, kind, temporality, True
    )
    group = MetricPoints(metric)
    series = INTERNER.intern_series(metric, attributes)
    for value, ts, start in points:
        group.append(series, value, ts, start)
    return Batch([group])
