"""Parsed text-format families -> `native_prometheus` metrics and their points, for one group.

Types: `counter` -> cumulative monotonic SUM (the name stays as pushed, `_total` included),
`gauge` and `untyped` -> GAUGE, `histogram` -> cumulative HISTOGRAM assembled from its `_bucket`
(`le`), `_sum` and `_count` lines, `summary` -> SUMMARY from its quantile, `_sum` and `_count`
lines. A `<name>_created` gauge that accompanies a counter `<name>_total`, a histogram or a
summary `<name>` (prometheus_client writes them in text format) is not a metric of its own: its
value (Unix seconds) becomes the start time of the matching series. Every series gets the
group's labels (`job` and the rest of the grouping key), which
override pushed labels of the same name, as the Pushgateway does; empty label values are dropped.

Invariant: every returned point's series is of the returned metric, and a family's points have
distinct label sets (the parser refuses repeated series; assembly keys on labels).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final

from metricgate.model import (
    INTERNER,
    HistogramPoint,
    Metric,
    MetricKind,
    PointValue,
    Resource,
    Scope,
    Series,
    SummaryPoint,
    Temporality,
)
from metricgate.receivers.pushgateway.text import (
    Family,
    Labels,
    Sample,
    TextFormatError,
    parse_float,
)

_KINDS: Final = {
    "counter": (MetricKind.SUM, Temporality.CUMULATIVE, True),
    "gauge": (MetricKind.GAUGE, Temporality.UNSPECIFIED, False),
    "untyped": (MetricKind.GAUGE, Temporality.UNSPECIFIED, False),
    "histogram": (MetricKind.HISTOGRAM, Temporality.CUMULATIVE, False),
    "summary": (MetricKind.SUMMARY, Temporality.UNSPECIFIED, False),
}


class PushError(Exception):
    """A push that is well-formed text but cannot be taken (HTTP 400)."""


@dataclass(slots=True)
class Converted:
    """One family of a push: its metric and its points, one per series."""

    name: str
    metric: Metric
    points: list[tuple[Series, PointValue, int]] = field(default_factory=list)
    """(series, value, start time in ns or 0)."""


@dataclass(slots=True)
class _Parts:
    """The lines of one histogram or summary series, collected before assembly."""

    buckets: list[tuple[float, float, int]] = field(default_factory=list)
    quantiles: list[tuple[float, float]] = field(default_factory=list)
    sum: float | None = None
    count: float | None = None


def convert(
    families: list[Family], grouping: Labels, resource: Resource, scope: Scope
) -> list[Converted]:
    """The families of one push as metrics and points; raise `PushError` for bad content."""
    created = _created(families)
    out = []
    for family in families:
        if family.name in created:
            continue
        starts = created.get(_created_name(family), {})
        kind, temporality, monotonic = _KINDS[family.type]
        metric = INTERNER.intern_metric(
            resource,
            scope,
            family.name,
            "",
            kind,
            temporality,
            monotonic,
            family.help,
            native_prometheus=True,
        )
        converted = Converted(family.name, metric)
        if kind in (MetricKind.SUM, MetricKind.GAUGE):
            for sample in family.samples:
                series = INTERNER.intern_series(metric, merge(sample.labels, grouping))
                converted.points.append((series, sample.value, starts.get(sample.labels, 0)))
        else:
            _assemble(family, converted, grouping, starts)
        out.append(converted)
    return out


def merge(pushed: Labels, grouping: Labels) -> tuple[tuple[str, str], ...]:
    """Series attributes: pushed labels, overridden by the grouping labels; no empty values."""
    labels = dict(pushed)
    labels.update(grouping)
    return tuple(sorted((name, value) for name, value in labels.items() if value))


def _created_name(family: Family) -> str:
    if family.type == "counter":
        return family.name.removesuffix("_total") + "_created"
    return family.name + "_created"


def _created(families: list[Family]) -> dict[str, dict[Labels, int]]:
    """`_created` gauge families that belong to a counter, histogram or summary: labels -> ns."""
    names = {f.name: f for f in families if f.type in ("gauge", "untyped")}
    out: dict[str, dict[Labels, int]] = {}
    for family in families:
        if family.type not in ("counter", "histogram", "summary"):
            continue
        found = names.get(_created_name(family))
        if found is not None:
            out[found.name] = {
                s.labels: int(s.value * 1e9) for s in found.samples if math.isfinite(s.value)
            }
    return out


def _assemble(
    family: Family, converted: Converted, grouping: Labels, starts: dict[Labels, int]
) -> None:
    histogram = family.type == "histogram"
    special = "le" if histogram else "quantile"
    parts: dict[Labels, _Parts] = {}
    for sample in family.samples:
        labels = tuple(pair for pair in sample.labels if pair[0] != special)
        found = parts.setdefault(labels, _Parts())
        suffix = sample.name[len(family.name) :]
        if suffix == "_sum":
            found.sum = sample.value
        elif suffix == "_count":
            found.count = sample.value
        elif suffix == ("_bucket" if histogram else ""):
            bound = _special_label(sample, special)
            if histogram:
                found.buckets.append((bound, sample.value, sample.line))
            else:
                found.quantiles.append((bound, sample.value))
        else:
            raise PushError(
                f"line {sample.line}: {sample.name} does not fit {family.type} {family.name}"
            )
    bounds_seen: dict[tuple[float, ...], tuple[float, ...]] = {}
    for labels, found in parts.items():
        series = INTERNER.intern_series(converted.metric, merge(labels, grouping))
        if histogram:
            point: PointValue = _histogram(family.name, found, bounds_seen)
        else:
            point = SummaryPoint(
                int(found.count or 0), found.sum or 0.0, tuple(sorted(found.quantiles))
            )
        converted.points.append((series, point, starts.get(labels, 0)))


def _special_label(sample: Sample, name: str) -> float:
    text = dict(sample.labels).get(name)
    if text is None:
        raise PushError(f"line {sample.line}: {sample.name} has no {name!r} label")
    try:
        return parse_float(text, sample.line)
    except TextFormatError:
        raise PushError(f"line {sample.line}: {name}={text!r} is not a number") from None


def _histogram(
    name: str, found: _Parts, bounds_seen: dict[tuple[float, ...], tuple[float, ...]]
) -> HistogramPoint:
    buckets = sorted(found.buckets)
    infinite = [count for bound, count, _ in buckets if bound == math.inf]
    finite = [(bound, count, line) for bound, count, line in buckets if bound != math.inf]
    total = found.count if found.count is not None else (infinite[0] if infinite else None)
    if total is None:
        total = finite[-1][1] if finite else 0.0
    cumulative = [count for _, count, _ in finite] + [total]
    previous = 0.0
    per_bucket = []
    for index, count in enumerate(cumulative):
        if count < previous:
            line = finite[index][2] if index < len(finite) else finite[-1][2]
            raise PushError(f"line {line}: buckets of histogram {name} are not cumulative")
        per_bucket.append(int(count - previous))
        previous = count
    bounds = tuple(bound for bound, _, _ in finite)
    bounds = bounds_seen.setdefault(bounds, bounds)
    return HistogramPoint(int(total), found.sum, bounds, tuple(per_bucket))
