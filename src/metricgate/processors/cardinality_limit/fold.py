"""Folding refused series into one overflow series per metric, keeping totals right.

The overflow series has the refused series' metric descriptor and the attribute set
`otel.metric.overflow=true` (the OpenTelemetry SDK's own overflow attribute, which Prometheus
translation renders `otel_metric_overflow="true"`). Native Prometheus series instead get the label
`otel_metric_overflow="true"` plus their `job` and `instance` labels, so one overflow series exists
per metric and target: their labels are final, and dropping job/instance would merge targets.
(OTLP series get job/instance from the resource, which the shared metric descriptor keeps.)
Both keep the gateway's tenant label (`tenant`, stamped by `TenantStamp`), so two tenants'
overflow series stay two series on a shared scrape page.

What an overflow point carries, per kind of metric:
- delta sums and histograms: the sum of the folded points of the batch;
- cumulative sums, histograms and summaries: a running total of the folded series' increases
  (a decrease of a monotonic series is a reset: its increase is its new value), so the overflow
  counter never decreases and grows by exactly what the folded series grew. To compute increases
  it remembers each folded series' last point (one dict entry; expires like the series). A
  series seen for the first time adds its whole value; one that comes back after being forgotten
  (unseen for a window) adds it again: an over-count, never a decrease. The total keeps the start
  timestamp of its first point;
- gauges (and sums without temporality): the latest folded value. A sum of gauges is not
  meaningful, so the overflow gauge is only a sample.
Summaries keep count and sum; their quantiles cannot be combined and are left out. Explicit
histograms fold only with the bucket bounds of the first folded point (others are dropped and
counted, reason `overflow_unmergeable`), as are NaN values of sums.

A series that already is an overflow series (an SDK's or an upstream gateway's) is always folded
(refusal reason `upstream_overflow`), so it adds into ours instead of colliding with it.

Invariant: an overflow total, once emitted, only ever grows (monotonic metrics), and it is kept
until no folded point reached it for a whole window.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import replace
from enum import Enum

from metricgate.model import (
    FLAG_NO_RECORDED_VALUE,
    INTERNER,
    Attributes,
    ExponentialHistogramPoint,
    HistogramPoint,
    Metric,
    MetricKind,
    MetricPoints,
    PointValue,
    Series,
    SummaryPoint,
    Temporality,
)
from metricgate.model.arithmetic import add, subtract

OTLP_OVERFLOW: Attributes = (("otel.metric.overflow", True),)
PROMETHEUS_OVERFLOW = ("otel_metric_overflow", "true")
TENANT_LABEL = "tenant"
TENANT_ATTRIBUTE = "tenant.id"
"""Stamped data has both; only a metric whose resource has a tenant is checked for the label."""
_TENANT_KEY = (TENANT_LABEL,)
_TARGET_LABELS = frozenset(("job", "instance", TENANT_LABEL))

UNMERGEABLE = "overflow_unmergeable"
"""Dropped-point reason: the point cannot be added to the overflow (bucket bounds differ, NaN)."""
UNTRACKED = "overflow_untracked"
"""Dropped-point reason: a cumulative point whose series could not be remembered (tracking full)."""


class FoldMode(Enum):
    """How refused points of a metric combine into its overflow point."""

    LAST = 0
    DELTA = 1
    CUMULATIVE = 2


def fold_mode(metric: Metric) -> FoldMode:
    """Cumulative streams and summaries accumulate increases; deltas add; the rest keep last."""
    if metric.kind is MetricKind.SUMMARY or metric.temporality is Temporality.CUMULATIVE:
        return FoldMode.CUMULATIVE
    if metric.kind is MetricKind.GAUGE or metric.temporality is not Temporality.DELTA:
        return FoldMode.LAST
    return FoldMode.DELTA


def is_overflow_series(series: Series) -> bool:
    """True for a series that already is an overflow series (from an SDK or another gateway)."""
    attributes = series.attributes
    if not series.metric.native_prometheus:
        return attributes == OTLP_OVERFLOW or (
            len(attributes) == 2
            and attributes[0] == OTLP_OVERFLOW[0]
            and attributes[1][0] == TENANT_LABEL
        )
    return PROMETHEUS_OVERFLOW in attributes and all(
        key in _TARGET_LABELS or key == PROMETHEUS_OVERFLOW[0] for key, _ in attributes
    )


class _Total:
    __slots__ = ("generation", "start", "value")

    def __init__(self, value: PointValue, start: int, generation: int) -> None:
        self.value = value
        self.start = start
        self.generation = generation


class OverflowPoint:
    """One overflow point: assembled from the folded points of one batch, then emitted."""

    __slots__ = ("start", "timestamp", "value")

    def __init__(self, value: PointValue | None, timestamp: int, start: int) -> None:
        self.value = value
        self.timestamp = timestamp
        self.start = start


class Folder:
    """Overflow state of one limiter: running totals and folded series' last points."""

    def __init__(self, max_tracked: int) -> None:
        self.max_tracked = max_tracked
        self._last: dict[Series, PointValue] = {}
        self._last_prev: dict[Series, PointValue] = {}
        self._totals: dict[Series, _Total] = {}
        self._targets: dict[object, Series] = {}
        self.generation = 0
        self.dropped: dict[str, int] = {}
        """Reason -> points that could not be folded, since the caller last cleared it."""

    def rotate(self, expire_all: bool) -> None:
        """Called on every window boundary: forget what no point touched for a window."""
        self.generation += 1
        self._last_prev = {} if expire_all else self._last
        self._last = {}
        oldest = self.generation - (0 if expire_all else 1)
        self._totals = {k: t for k, t in self._totals.items() if t.generation >= oldest}
        self._targets.clear()

    @property
    def tracked(self) -> int:
        return len(self._last) + len(self._last_prev)

    def target(self, series: Series) -> Series:
        """The overflow series that `series` folds into."""
        metric = series.metric
        if not metric.native_prometheus:
            found = self._targets.get(metric)
            if found is not None:  # a resource without a tenant: one target per metric
                return found
            if metric.resource.get(TENANT_ATTRIBUTE) is None:
                found = self._targets[metric] = INTERNER.intern_series(metric, OTLP_OVERFLOW)
                return found
            attributes = series.attributes
            at = bisect_left(attributes, _TENANT_KEY)  # sorted by key: C speed, no scan
            pair = attributes[at] if at < len(attributes) else None
            tenant = pair if pair is not None and pair[0] == TENANT_LABEL else None
            found = self._targets.get((metric, tenant))
            if found is None:
                kept = OTLP_OVERFLOW if tenant is None else (*OTLP_OVERFLOW, tenant)
                found = self._targets[(metric, tenant)] = INTERNER.intern_series(metric, kept)
            return found
        kept = tuple(pair for pair in series.attributes if pair[0] in _TARGET_LABELS)
        key = (metric, kept)
        found = self._targets.get(key)
        if found is None:
            attributes = tuple(sorted((*kept, PROMETHEUS_OVERFLOW)))
            found = self._targets[key] = INTERNER.intern_series(metric, attributes)
        return found

    def fold(self, group: MetricPoints, indexes: list[int]) -> list[tuple[Series, OverflowPoint]]:
        """Overflow points (series, value) for the points of `group` at `indexes`."""
        metric = group.metric
        mode = fold_mode(metric)
        series, values, flags = group.series, group.values, group.flags
        timestamps, starts = group.timestamps, group.start_timestamps
        pending: dict[Series, OverflowPoint] = {}
        dropped = 0
        untracked = 0
        for i in indexes:
            if flags[i] & FLAG_NO_RECORDED_VALUE:
                continue  # a folded series ended; the overflow series goes on
            value = values[i]
            if mode is not FoldMode.LAST and value.__class__ is float and value != value:
                dropped += 1  # NaN would poison every later total
                continue
            target = self.target(series[i])
            timestamp = timestamps[i]
            entry = pending.get(target)
            if mode is FoldMode.LAST:
                if entry is None:
                    pending[target] = OverflowPoint(value, timestamp, starts[i])
                elif timestamp >= entry.timestamp:
                    entry.value, entry.timestamp = value, timestamp
                continue
            if mode is FoldMode.CUMULATIVE:
                gained = self._increase(series[i], value, metric.monotonic)
                if gained is None:
                    untracked += 1
                    continue
                value = gained
            if entry is None:
                pending[target] = OverflowPoint(value, timestamp, starts[i])
                continue
            total = value if entry.value is None else add(entry.value, value)
            if total is None:
                dropped += 1
                continue
            entry.value = total
            entry.timestamp = max(entry.timestamp, timestamp)
            if starts[i] and (not entry.start or starts[i] < entry.start):
                entry.start = starts[i]
        if dropped:
            self.dropped[UNMERGEABLE] = self.dropped.get(UNMERGEABLE, 0) + dropped
        if untracked:
            self.dropped[UNTRACKED] = self.dropped.get(UNTRACKED, 0) + untracked
        if mode is FoldMode.CUMULATIVE:
            return [(target, self._accumulate(target, entry)) for target, entry in pending.items()]
        return list(pending.items())

    def _increase(self, series: Series, value: PointValue, monotonic: bool) -> PointValue | None:
        # Deliberately not `metricgate.model.delta.Deltas`: an overflow total needs no start or
        # time (an older or repeated point only over-counts, never decreases the total), so the
        # state is the bare last value in two generations capped with the admission tracking;
        # a `Last` per remembered series would cost its 3 slots (~56 bytes) per refused series
        # and a time/start check per point for nothing. First point and reset: whole value.
        previous = self._last.get(series)
        if previous is None:
            previous = self._last_prev.pop(series, None)
            if previous is None and self.tracked >= self.max_tracked:
                return None
        self._last[series] = value
        return increase(value, previous, monotonic)

    def _accumulate(self, target: Series, gained: OverflowPoint) -> OverflowPoint:
        assert gained.value is not None
        total = self._totals.get(target)
        if total is None:
            start = gained.start or gained.timestamp
            total = self._totals[target] = _Total(gained.value, start, self.generation)
        else:
            added = add(total.value, gained.value)
            if added is None:
                self.dropped[UNMERGEABLE] = self.dropped.get(UNMERGEABLE, 0) + 1
            else:
                total.value = added
            total.generation = self.generation
        return OverflowPoint(total.value, gained.timestamp, total.start)


def increase(current: PointValue, previous: PointValue | None, monotonic: bool) -> PointValue:
    """What a folded cumulative series gained from `previous` to `current`.

    A decrease of a monotonic number (or of any count or bucket), or a point that does not
    combine with the previous one, is a reset: the increase is all of `current`. Histogram min and
    max are the current point's (cumulative min/max), so adding the increases keeps them right.
    """
    if previous is None:
        return current
    if isinstance(current, float | int) and isinstance(previous, float | int):
        return current if monotonic and current < previous else current - previous
    gained = subtract(current, previous)
    if gained is None:
        if isinstance(current, SummaryPoint):  # what is added up keeps no quantiles
            return SummaryPoint(current.count, current.sum, ())
        return current
    if isinstance(current, HistogramPoint | ExponentialHistogramPoint):
        return replace(gained, min=current.min, max=current.max)  # type: ignore[type-var]
    return gained
