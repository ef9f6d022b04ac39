"""Helpers shared by the aggregate processor tests: a settable clock, a sink, batch builders."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from metricgate.errors import QueueFullError
from metricgate.model import (
    INTERNER,
    Batch,
    HistogramPoint,
    Metric,
    MetricKind,
    MetricPoints,
    PointValue,
    Temporality,
)
from metricgate.processors.aggregate import AggregateConfig, AggregateProcessor

BASE = 1_700_000_040
"""A minute-aligned Unix time (seconds) the tests start from."""
NS = 1_000_000_000


class Clock:
    """A wall clock the test sets by hand."""

    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class Sink:
    """A next consumer that records batches."""

    def __init__(self) -> None:
        self.batches: list[Batch] = []
        self.refuse = 0
        """Refuse this many batches (a full queue downstream) before accepting again."""

    async def consume(self, batch: Batch) -> None:
        if self.refuse:
            self.refuse -= 1
            raise QueueFullError("downstream queue is full")
        self.batches.append(batch)

    def take(self) -> list[tuple[str, dict[str, Any], PointValue, int, int]]:
        """(name, labels, value, timestamp_ns, start_ns) of every point so far; then forget."""
        out = [
            (group.metric.name, dict(s.attributes), v, ts, st)
            for batch in self.batches
            for group in batch.metrics
            for s, v, ts, st in zip(
                group.series, group.values, group.timestamps, group.start_timestamps, strict=True
            )
        ]
        self.batches.clear()
        return out

    def values(self) -> dict[tuple[str, tuple[tuple[str, Any], ...]], PointValue]:
        """{(name, sorted labels): value} of the points so far; then forget."""
        return {(n, tuple(sorted(labels.items()))): v for n, labels, v, _, _ in self.take()}


def make(rules: str, start: float = BASE + 0.5) -> tuple[AggregateProcessor, Sink, Clock]:
    """An aggregate processor for the YAML rule list `rules`, with its sink and clock."""
    config = AggregateConfig.model_validate({"rules": yaml.safe_load(rules)})
    clock = Clock(start)
    sink = Sink()
    return AggregateProcessor("aggregate", config, sink, clock=clock), sink, clock


def native(
    name: str,
    kind: MetricKind = MetricKind.SUM,
    temporality: Temporality = Temporality.CUMULATIVE,
    monotonic: bool = True,
) -> Metric:
    """A metric already in Prometheus form (as remote-write would deliver it)."""
    if kind is MetricKind.GAUGE:
        temporality, monotonic = Temporality.UNSPECIFIED, False
    return INTERNER.intern_metric(
        INTERNER.intern_resource(()),
        INTERNER.intern_scope(""),
        name,
        "",
        kind,
        temporality,
        monotonic,
        native_prometheus=True,
    )


def points(
    metric: Metric,
    values: Mapping[tuple[tuple[str, str], ...], PointValue],
    t: float,
    start: int = 0,
) -> Batch:
    """One batch: a point per entry of `values` (keyed by label pairs) at time `t` seconds."""
    group = MetricPoints(metric)
    for labels, value in values.items():
        series = INTERNER.intern_series(metric, labels)
        group.append(series, value, int(t * NS), start)
    return Batch([group])


C = native("c_total")
G = native("g", MetricKind.GAUGE)
Labels = tuple[tuple[str, str], ...]
A: Labels = (("k", "a"),)
B: Labels = (("k", "b"),)
Rows = Sequence[tuple[float, Mapping[Labels, PointValue]]]


async def feed(p: AggregateProcessor, clock: Clock, metric: Metric, rows: Rows) -> None:
    """rows: (t, {labels: value}); each batch arrives 0.1s after its timestamp."""
    for t, values in rows:
        clock.t = t + 0.1
        await p.consume(points(metric, values, t))


def hist(counts: tuple[int, ...], total: float, bounds: tuple[float, ...]) -> HistogramPoint:
    return HistogramPoint(sum(counts), total, bounds, counts)
