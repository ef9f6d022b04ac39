"""`Batch` -> Datadog v2 series, as the Collector's Datadog exporter maps OTLP by default.

- gauge -> gauge (type 3); non-monotonic cumulative sum -> gauge;
- delta sum -> count (type 1); cumulative monotonic sum -> delta count from per-series state;
- histogram and exponential histogram -> `<name>.count` / `<name>.sum` counts, `.min` / `.max`
  gauges, and in `counters` mode one `<name>.bucket` count per explicit bucket tagged
  `lower_bound` / `upper_bound`; cumulative ones are turned into deltas like sums;
- summary -> `.count` / `.sum` counts (deltas when cumulative) and one `<name>.quantile` gauge
  per quantile, tagged `quantile`;
- NaN and +-Inf values, and points flagged NO_RECORDED_VALUE, are skipped; so are points more
  than 1 h old or 10 min in the future, which the intake would refuse (counted as dropped).

Cumulative state (`metricgate.model.delta`): per series the last (start time, time, values). A
point older than the last is dropped; a smaller count or a new start time is a reset and, like a
series' first point, goes out or not by `initial_cumulative_monotonic_value` (`auto`: only when
the series started after this exporter did, and its start is not its time). The state tables are
bounded and forget everything past their bound.

Each series is produced as a ready JSON object text: its head (name, type, host, tags) is cached
per (series, suffix, extra tags), so a known series costs one string format per point.

`map(batch, followers=...)` also records which series continue a point's first one (a histogram's
`.sum` after its `.count`), so each request can say how many data points it carries
(`metricgate.pipeline.retry.points_per_request`); gauges and counters, one series a point, cost
nothing for it.

Invariant: `map()` advances the cumulative state, so it must run once per batch, never per
delivery attempt (on a partial failure the exporter keeps the mapped payloads still owed).
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from typing import Final

from metricgate.exporters.datadog import tags as t
from metricgate.exporters.datadog.config import MetricsConfig
from metricgate.model import (
    FLAG_NO_RECORDED_VALUE,
    Batch,
    ExponentialHistogramPoint,
    HistogramPoint,
    MetricKind,
    MetricPoints,
    Resource,
    Series,
    SummaryPoint,
    Temporality,
)
from metricgate.model.delta import (
    Deltas,
    FirstPoint,
    counts_increase,
    number_increase,
    take_out_of_order,
)

COUNT: Final = 1
GAUGE: Final = 3
MAX_AGE_S: Final = 3600
MAX_FUTURE_S: Final = 600
_MAX_STATE: Final = 2_000_000
_MAX_HEADS: Final = 1_000_000

_FIRST: Final = {"keep": FirstPoint.KEEP, "drop": FirstPoint.DROP, "auto": FirstPoint.AFTER_SINCE}


class Mapper:
    """Maps batches to series JSON texts; holds the cumulative state and the head cache."""

    def __init__(self, config: MetricsConfig, fallback_host: str) -> None:
        self.config = config
        self.fallback_host = fallback_host
        self.dropped: Counter[str] = Counter()
        """Points not sent, by reason, since the last `take_dropped()`."""
        first = _FIRST[config.sums.initial_cumulative_monotonic_value]
        self._numbers: Deltas[float] = Deltas(number_increase, first)
        self._counts: Deltas[tuple[float, ...]] = Deltas(counts_increase, first)
        """(count, sum[, buckets]) of cumulative histograms and summaries."""
        self.started_ns = time.time_ns()
        self._heads: dict[tuple[object, ...], str] = {}
        self._resources: dict[Resource, tuple[str, list[str]]] = {}

    @property
    def started_ns(self) -> int:
        """`auto` sends a first point whose start time is after this (Unix ns)."""
        return self._numbers.since - 1

    @started_ns.setter
    def started_ns(self, value: int) -> None:
        self._numbers.since = self._counts.since = value + 1

    def take_dropped(self) -> Counter[str]:
        dropped, self.dropped = self.dropped, Counter()
        return take_out_of_order(dropped, self._numbers, self._counts)

    def map(
        self, batch: Batch, now_s: float | None = None, followers: list[int] | None = None
    ) -> list[str]:
        """The series of `batch` as JSON object texts (one point each); `followers` gets the
        indexes of the series that continue a point's first one."""
        now = time.time() if now_s is None else now_s
        oldest, newest = now - MAX_AGE_S, now + MAX_FUTURE_S
        if len(self._heads) > _MAX_HEADS:
            self._heads.clear()
        if len(self._numbers.last) + len(self._counts.last) > _MAX_STATE:
            self._numbers.last.clear()
            self._counts.last.clear()
        out: list[str] = []
        for group in batch.metrics:
            for series, value, ts, start, flags in group.rows():
                if flags & FLAG_NO_RECORDED_VALUE:
                    continue
                seconds = ts // 1_000_000_000
                if not oldest <= seconds <= newest:
                    self.dropped["outside_time_window"] += 1
                    continue
                if isinstance(value, float | int):
                    self._number(group, series, float(value), ts, start, seconds, out)
                    continue
                first = len(out)
                if isinstance(value, HistogramPoint | ExponentialHistogramPoint):
                    self._histogram(group, series, value, ts, start, seconds, out)
                elif isinstance(value, SummaryPoint):
                    self._summary(group, series, value, ts, start, seconds, out)
                if followers is not None and len(out) > first + 1:
                    followers.extend(range(first + 1, len(out)))
        return out

    def _emit(
        self,
        out: list[str],
        series: Series,
        suffix: str,
        kind: int,
        seconds: int,
        value: float,
        extra: tuple[str, ...] = (),
    ) -> None:
        if not math.isfinite(value):
            self.dropped["not_finite"] += 1
            return
        key = (series, suffix, kind, extra)
        head = self._heads.get(key)
        if head is None:
            head = self._heads[key] = self._head(series, suffix, kind, extra)
        out.append(f'{head}"points":[{{"timestamp":{seconds},"value":{value!r}}}]}}')

    def _head(self, series: Series, suffix: str, kind: int, extra: tuple[str, ...]) -> str:
        metric = series.metric
        resources, common = self._resource(metric.resource)
        tags = [*t.attribute_tags(series.attributes), *extra, *common]
        name = json.dumps(metric.name + suffix)
        return f'{{"metric":{name},"type":{kind},{resources}"tags":{json.dumps(tags)},'

    def _resource(self, resource: Resource) -> tuple[str, list[str]]:
        found = self._resources.get(resource)
        if found is None:
            host = t.host(resource, self.fallback_host)
            resources = (
                f'"resources":[{{"name":{json.dumps(host)},"type":"host"}}],' if host else ""
            )
            common = t.resource_tags(resource, self.config.resource_attributes_as_tags)
            if len(self._resources) > 10_000:
                self._resources.clear()
            found = self._resources[resource] = (resources, common)
        return found

    def _number(
        self,
        group: MetricPoints,
        series: Series,
        value: float,
        ts: int,
        start: int,
        seconds: int,
        out: list[str],
    ) -> None:
        metric = group.metric
        if metric.kind is MetricKind.GAUGE:
            self._emit(out, series, "", GAUGE, seconds, value)
        elif metric.temporality is Temporality.DELTA:
            self._emit(out, series, "", COUNT, seconds, value)
        elif not metric.monotonic:
            self._emit(out, series, "", GAUGE, seconds, value)
        elif math.isfinite(value):
            delta = self._numbers.delta(series, start, ts, value)
            if delta is not None:
                self._emit(out, series, "", COUNT, seconds, delta)
        else:
            self.dropped["not_finite"] += 1

    def _histogram(
        self,
        group: MetricPoints,
        series: Series,
        value: HistogramPoint | ExponentialHistogramPoint,
        ts: int,
        start: int,
        seconds: int,
        out: list[str],
    ) -> None:
        buckets = self.config.histograms.mode == "counters" and isinstance(value, HistogramPoint)
        counts: tuple[float, ...] = (float(value.count), value.sum or 0.0)
        if buckets:
            assert isinstance(value, HistogramPoint)
            counts += tuple(float(c) for c in value.bucket_counts)
        if group.metric.temporality is Temporality.CUMULATIVE:
            window = self._counts.delta(series, start, ts, counts)
            if window is None:
                return
            counts = window
        if self.config.histograms.send_aggregation_metrics:
            self._emit(out, series, ".count", COUNT, seconds, counts[0])
            if value.sum is not None:
                self._emit(out, series, ".sum", COUNT, seconds, counts[1])
            if value.min is not None:
                self._emit(out, series, ".min", GAUGE, seconds, value.min)
            if value.max is not None:
                self._emit(out, series, ".max", GAUGE, seconds, value.max)
        if buckets:
            assert isinstance(value, HistogramPoint)
            bounds = (-math.inf, *value.bounds, math.inf)
            for i, count in enumerate(counts[2:]):
                extra = (
                    f"lower_bound:{t.format_float(bounds[i])}",
                    f"upper_bound:{t.format_float(bounds[i + 1])}",
                )
                self._emit(out, series, ".bucket", COUNT, seconds, count, extra)

    def _summary(
        self,
        group: MetricPoints,
        series: Series,
        value: SummaryPoint,
        ts: int,
        start: int,
        seconds: int,
        out: list[str],
    ) -> None:
        counts: tuple[float, ...] | None = (float(value.count), value.sum)
        if group.metric.temporality is not Temporality.DELTA:
            counts = self._counts.delta(series, start, ts, (float(value.count), value.sum))
        if counts is not None:
            self._emit(out, series, ".count", COUNT, seconds, counts[0])
            self._emit(out, series, ".sum", COUNT, seconds, counts[1])
        for quantile, found in value.quantiles:
            extra = (f"quantile:{t.format_float(quantile)}",)
            self._emit(out, series, ".quantile", GAUGE, seconds, found, extra)
