"""Batches for the datadog exporter tests: every metric kind, and one wide metric."""

from __future__ import annotations

import os
import time

from metricgate.model import (
    INTERNER,
    Batch,
    HistogramPoint,
    MetricKind,
    MetricPoints,
    PointValue,
    SummaryPoint,
    Temporality,
    sorted_attributes,
)

RESOURCE = INTERNER.intern_resource(sorted_attributes({"host.name": "h1", "service.name": "s"}))
SCOPE = INTERNER.intern_scope("dd")


def every_kind(now_ns: int) -> Batch:
    groups = []
    values: list[tuple[str, MetricKind, PointValue]] = [
        ("g", MetricKind.GAUGE, 1.5),
        ("c", MetricKind.SUM, 3.0),
        ("h", MetricKind.HISTOGRAM, HistogramPoint(3, 6.0, (1.0,), (1, 2), 0.5, 4.0)),
        ("q", MetricKind.SUMMARY, SummaryPoint(2, 5.0, ((0.5, 2.0),))),
    ]
    for name, kind, value in values:
        temporality = (
            Temporality.UNSPECIFIED
            if kind in (MetricKind.GAUGE, MetricKind.SUMMARY)
            else Temporality.DELTA
        )
        group = _group(name, kind, temporality)
        group.append(INTERNER.intern_series(group.metric, (("k", "v"),)), value, now_ns)
        groups.append(group)
    return Batch(groups)


def many_series(count: int, random_tags: bool) -> Batch:
    group = _group("wide", MetricKind.GAUGE, Temporality.UNSPECIFIED)
    now = time.time_ns()
    for i in range(count):
        tag = os.urandom(64).hex() if random_tags else f"{i:08d}"
        attributes = (("id", tag), ("pad", "p" * (40 if random_tags else 500)))
        group.append(INTERNER.intern_series(group.metric, attributes), float(i), now)
    return Batch([group])


def _group(
    name: str, kind: MetricKind, temporality: Temporality = Temporality.DELTA
) -> MetricPoints:
    metric = INTERNER.intern_metric(RESOURCE, SCOPE, name, "", kind, temporality, True)
    return MetricPoints(metric)
