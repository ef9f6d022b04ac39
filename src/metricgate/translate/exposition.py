"""Exposition pages -> native Prometheus metrics and points, for `prometheus` and `pushgateway`.

A `PageConverter` belongs to one source (a scrape target, a Pushgateway group) and turns each of
its parsed pages (`metricgate.wire.exposition.Page`) into `MetricPoints` of `native_prometheus`
metrics, with Prometheus semantics kept:

- counter -> cumulative monotonic SUM under the sample name (`_total` kept); gauge, untyped and
  unknown -> GAUGE; histogram -> cumulative HISTOGRAM assembled from `_bucket{le}` (cumulative on
  the page, per bucket in the model), `_sum` and `_count`; summary -> SUMMARY from its quantiles,
  `_sum` and `_count`; gaugehistogram, stateset and info samples -> GAUGEs as they are.
- A `_created` sample of a counter, histogram or summary (an OpenMetrics sample of the family, or
  in text a `<base>_created` gauge next to a counter `<base>_total`, a histogram or a summary
  `<base>`, as prometheus_client writes them) is not a series: its value (Unix seconds) is the
  start time of the matching series.
- OpenMetrics exemplars on counters and buckets become the points' exemplars (`trace_id` and
  `span_id` labels as the ids, the rest as filtered attributes).

Labels: `label(name, labels)` (the caller's: grouping labels, target labels and metric relabeling)
gives each sample's final name and labels, or None to drop it, and is asked once per series.
A histogram or summary part whose final name still ends in its suffix (and which keeps its `le` or
`quantile`) stays part of the assembled point named without the suffix; any other keeps its new
name as a gauge of its own. `exposition_parts.py` assembles those parts into points and checks
them, with the page line in the error.

Steady state: one dict lookup per sample (the per-series `_Slot`, kept while the page's metadata
stays the same), then list appends; and when a page has the same shape as the one before
(`Page.shape`: same series in the same order, no exemplars or honored timestamps), the last
conversion is replayed (`_Plan`): number values are picked by index at C speed, histograms
from their fixed layout (`exposition_histograms.py`), and only summaries (and histograms whose
counts need the full checks) are assembled line by line.

Invariant: every returned point's series is of its `MetricPoints`' metric, and each series occurs
once per conversion (the parser already left out repeated series).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Final

from metricgate.model import (
    INTERNER,
    HistogramPoint,
    Metric,
    MetricKind,
    MetricPoints,
    Resource,
    Scope,
    Series,
    SummaryPoint,
    Temporality,
)
from metricgate.translate.exposition_histograms import HistogramLayout
from metricgate.translate.exposition_parts import (
    Parts,
    check_count,
    histogram_point,
    nonempty,
    page_exemplar,
    parse_bound,
    summary_point,
)
from metricgate.wire.exposition import (
    FamilyMeta,
    Labels,
    Page,
    SeriesLine,
)

LabelFunction = Callable[[str, Labels], "tuple[str, Labels] | None"]
"""(sample name, page labels) -> (final name, final labels), or None to drop the sample."""

_VALUE, _PART, _CREATED, _DROP = 0, 1, 2, 3
_PART_SUFFIX: Final = {"_bucket": "_bucket", "_sum": "_sum", "_count": "_count", "": ""}
_KINDS: Final = {
    "counter": (MetricKind.SUM, Temporality.CUMULATIVE, True),
    "histogram": (MetricKind.HISTOGRAM, Temporality.CUMULATIVE, False),
    "summary": (MetricKind.SUMMARY, Temporality.UNSPECIFIED, False),
}
_GAUGE: Final = (MetricKind.GAUGE, Temporality.UNSPECIFIED, False)
_STARTED: Final = frozenset(("counter", "histogram", "summary"))
_MAX_SLOTS: Final = 1_000_000


@dataclass(slots=True)
class _Slot:
    kind: int
    metric: Metric | None = None
    series: Series | None = None
    role: str = ""
    bound: float = 0.0


@dataclass(slots=True)
class Converted:
    """One page as points: groups per metric, and how many samples were kept."""

    groups: list[MetricPoints]
    samples: int
    """Samples of the page that were not dropped by the label function."""
    replayed: bool = False
    """True when the page had the shape of the converter's previous one: the same series."""


class PageConverter:
    """Converts the pages of one source (see the module docstring)."""

    def __init__(
        self, resource: Resource, scope: Scope, label: LabelFunction, max_series: int = _MAX_SLOTS
    ) -> None:
        self.resource = resource
        self.scope = scope
        self.label = label
        self.max_series = max_series
        self._slots: dict[SeriesLine, _Slot] = {}
        self._schema: tuple[str, ...] | None = None
        self._metrics: dict[tuple[str, int, str], Metric] = {}
        self._plan: _Plan | None = None

    def forget(self) -> None:
        """Drop every cached per-series answer (the label function changed)."""
        self._slots.clear()
        self._plan = None

    def convert(self, page: Page, now_ns: int, honor_timestamps: bool = True) -> Converted:
        """The points of `page`, stamped `now_ns` unless a sample carries its own timestamp (and
        `honor_timestamps`); raises `ExpositionError` for histogram or summary content that
        cannot be assembled."""
        plan = self._plan
        planned = page.shape is not None and not page.exemplars
        planned = planned and not (honor_timestamps and page.timestamps)
        if planned and plan is not None and plan.shape is page.shape:
            return plan.run(page, now_ns)
        if page.schema != self._schema:
            self._slots.clear()
            self._schema = page.schema
        self._plan = None
        plan = _Plan(page.shape) if planned else None
        slots = self._slots
        groups: dict[Metric, MetricPoints] = {}
        parts: dict[Series, Parts] = {}
        created: dict[Series, int] = {}
        stamps = page.timestamps if honor_timestamps else None
        exemplars = page.exemplars
        kept = 0
        last_metric: Metric | None = None
        group: MetricPoints | None = None
        for index, entry in enumerate(page.entries):
            slot = slots.get(entry) or self._slot(page, entry, index)
            kind = slot.kind
            if kind == _VALUE:
                kept += 1
                metric = slot.metric
                if metric is not last_metric:
                    group = groups.get(metric)  # type: ignore[arg-type]
                    if group is None:
                        group = groups[metric] = MetricPoints(metric)  # type: ignore[arg-type, index]
                    last_metric = metric
                at = len(group.series)  # type: ignore[union-attr]
                stamp = (
                    now_ns if stamps is None or index not in stamps else stamps[index] * 1_000_000
                )
                group.append(slot.series, page.values[index], stamp)  # type: ignore[union-attr, arg-type]
                if plan is not None:
                    plan.value_indexes(metric).append(index)  # type: ignore[arg-type]
                if exemplars and index in exemplars:
                    group.add_exemplars(at, (page_exemplar(exemplars[index]),))  # type: ignore[union-attr]
            elif kind == _PART:
                kept += 1
                self._part(page, index, slot, parts, stamps, now_ns)
                if plan is not None:
                    plan.part_slots(slot.series).append((index, slot))  # type: ignore[arg-type]
            elif kind == _CREATED:
                kept += 1
                if plan is not None:
                    plan.created.append((slot.series, index))  # type: ignore[arg-type]
                value = page.values[index]
                if math.isfinite(value):
                    created[slot.series] = int(value * 1e9)  # type: ignore[index]
        for series, found in parts.items():
            metric = series.metric
            group = groups.get(metric)
            if group is None:
                group = groups[metric] = MetricPoints(metric)
            point = (
                histogram_point(series.metric.name, found)
                if metric.kind is MetricKind.HISTOGRAM
                else summary_point(series.metric.name, found)
            )
            if found.exemplars:
                group.add_exemplars(len(group.series), tuple(found.exemplars))
            group.append(series, point, found.timestamp)
        if created:
            for group in groups.values():
                group.start_timestamps = [created.get(s, 0) for s in group.series]
        if plan is not None:
            plan.finish(groups, kept)
            self._plan = plan  # only a conversion that succeeded is replayed
        return Converted(list(groups.values()), kept)

    @staticmethod
    def _part(
        page: Page,
        index: int,
        slot: _Slot,
        parts: dict[Series, Parts],
        stamps: dict[int, int] | None,
        now_ns: int,
    ) -> None:
        series = slot.series
        found = parts.get(series)  # type: ignore[arg-type]
        line = page.lines[index]
        if found is None:
            stamp = now_ns if stamps is None or index not in stamps else stamps[index] * 1_000_000
            found = parts[series] = Parts(line, stamp)  # type: ignore[index]
        value = page.values[index]
        role = slot.role
        if role == "_bucket":
            check_count(value, line, "bucket count")
            found.buckets.append((slot.bound, value, line))
            if page.exemplars and index in page.exemplars:
                if found.exemplars is None:
                    found.exemplars = []
                found.exemplars.append(page_exemplar(page.exemplars[index]))
        elif role == "_sum":
            found.sum = value
        elif role == "_count":
            check_count(value, line, "count")
            found.count = value
            found.count_line = line
        else:
            found.quantiles.append((slot.bound, value))

    def _slot(self, page: Page, entry: SeriesLine, index: int) -> _Slot:
        """What `entry` is on pages with this metadata (slow path: new series only)."""
        if len(self._slots) >= self.max_series:
            self._slots.clear()
        family, role = page.resolve(entry)
        line = page.lines[index]
        slot = self._slots[entry] = self._build(page, entry, family, role, line)
        return slot

    def _build(
        self, page: Page, entry: SeriesLine, family: FamilyMeta, role: str, line: int
    ) -> _Slot:
        labeled = self.label(entry.name, entry.labels)
        if labeled is None:
            return _Slot(_DROP)
        name, labels = labeled
        kind = family.type
        if role == "_created" or (not role and kind in ("gauge", "untyped", "unknown")):
            base = family.name if role else entry.name.removesuffix("_created")
            target = _created_target(page, entry.name if not role else family.name, role)
            if target is not None and name.endswith("_created"):
                target_family, target_name = target
                final = name.removesuffix("_created") + target_name[len(base) :]
                return _Slot(_CREATED, series=self._series(target_family, final, labels))
        if kind in ("histogram", "summary") and role in _PART_SUFFIX:
            special = "le" if kind == "histogram" else "quantile"
            if role == "_bucket" or (kind == "summary" and not role):
                text = dict(labels).get(special)
                if name.endswith(role) and text is not None:
                    bound = parse_bound(text, special, line)
                    rest = tuple(pair for pair in labels if pair[0] != special)
                    series = self._series(family, name[: len(name) - len(role)], rest)
                    return _Slot(_PART, series=series, role=role or "quantile", bound=bound)
            elif role and name.endswith(role):
                series = self._series(family, name[: len(name) - len(role)], labels)
                return _Slot(_PART, series=series, role=role)
            return self._value(family, name, labels, gauge=True)
        return self._value(family, name, labels, gauge=kind != "counter")

    def _value(self, family: FamilyMeta, name: str, labels: Labels, *, gauge: bool) -> _Slot:
        metric = self._metric(name, _GAUGE if gauge else _KINDS["counter"], family.help)
        return _Slot(_VALUE, metric, INTERNER.intern_series(metric, nonempty(labels)))

    def _series(self, family: FamilyMeta, name: str, labels: Labels) -> Series:
        metric = self._metric(name, _KINDS.get(family.type, _GAUGE), family.help)
        return INTERNER.intern_series(metric, nonempty(labels))

    def _metric(
        self, name: str, kind: tuple[MetricKind, Temporality, bool], help_text: str
    ) -> Metric:
        key = (name, kind[0], help_text)
        metric = self._metrics.get(key)
        if metric is None:
            if len(self._metrics) >= self.max_series:
                self._metrics.clear()
            metric = self._metrics[key] = INTERNER.intern_metric(
                self.resource,
                self.scope,
                name,
                "",
                kind[0],
                kind[1],
                kind[2],
                help_text,
                native_prometheus=True,
            )
        return metric


class _Plan:
    """How the last page of a shape was converted, replayed for the next page of that shape:
    values are picked by index at C speed and only histograms and summaries are assembled."""

    def __init__(self, shape: object) -> None:
        self.shape = shape
        self._values: dict[Metric, list[int]] = {}
        self._parts: dict[Series, list[tuple[int, _Slot]]] = {}
        self.created: list[tuple[Series, int]] = []
        self._groups: list[tuple[Metric, list[Series], Callable[[list[float]], Any], int]] = []
        self._order: list[Metric] = []
        self._kept = 0
        self._layouts: dict[Series, HistogramLayout | None] = {}

    def value_indexes(self, metric: Metric) -> list[int]:
        found = self._values.get(metric)
        if found is None:
            found = self._values[metric] = []
        return found

    def part_slots(self, series: Series) -> list[tuple[int, _Slot]]:
        found = self._parts.get(series)
        if found is None:
            found = self._parts[series] = []
        return found

    def finish(self, groups: dict[Metric, MetricPoints], kept: int) -> None:
        self._kept = kept
        self._layouts = {
            series: HistogramLayout.build([(i, slot.role, slot.bound) for i, slot in slots])
            if series.metric.kind is MetricKind.HISTOGRAM
            else None
            for series, slots in self._parts.items()
        }
        self._order = list(groups)
        for metric, indexes in self._values.items():
            group = groups[metric]
            series = list(group.series[: len(indexes)])
            getter = itemgetter(*indexes) if len(indexes) > 1 else _single(indexes[0])
            self._groups.append((metric, series, getter, len(indexes)))

    def run(self, page: Page, now_ns: int) -> Converted:
        values = page.values
        groups: dict[Metric, MetricPoints] = {}
        for metric, known, getter, count in self._groups:
            zeros = [0] * count
            groups[metric] = MetricPoints(
                metric, list(known), list(getter(values)), [now_ns] * count, zeros, zeros[:]
            )
        layouts = self._layouts
        for part_series, slots in self._parts.items():
            layout = layouts[part_series]
            point: HistogramPoint | SummaryPoint | None = (
                None if layout is None else layout.point(values)
            )
            metric = part_series.metric
            if point is None:
                parts: dict[Series, Parts] = {}
                for index, slot in slots:
                    PageConverter._part(page, index, slot, parts, None, now_ns)
                found = parts[part_series]
                point = (
                    histogram_point(metric.name, found)
                    if metric.kind is MetricKind.HISTOGRAM
                    else summary_point(metric.name, found)
                )
            group = groups.get(metric)
            if group is None:
                group = groups[metric] = MetricPoints(metric)
            group.append(part_series, point, now_ns)
        if self.created:
            created: dict[Series, int] = {}
            for series, index in self.created:
                value = values[index]
                if math.isfinite(value):
                    created[series] = int(value * 1e9)
            for group in groups.values():
                group.start_timestamps = [created.get(s, 0) for s in group.series]
        return Converted([groups[m] for m in self._order if m in groups], self._kept, True)


def _single(index: int) -> Callable[[list[float]], tuple[float]]:
    def get(values: list[float]) -> tuple[float]:
        return (values[index],)

    return get


def _created_target(page: Page, name: str, role: str) -> tuple[FamilyMeta, str] | None:
    """For a `_created` sample (role `_created`, family `name`) or a gauge named
    `<base>_created`: the family it starts and that family's sample name; else None."""
    if role == "_created":
        family = page.families.get(name)
        if family is None or family.type not in _STARTED:
            return None
        return family, name + ("_total" if family.type == "counter" and page.openmetrics else "")
    if not name.endswith("_created"):
        return None
    base = name[: -len("_created")]
    for candidate, sample in ((base + "_total", base + "_total"), (base, base)):
        family = page.families.get(candidate)
        if family is not None and family.type in _STARTED:
            return family, sample
    return None
