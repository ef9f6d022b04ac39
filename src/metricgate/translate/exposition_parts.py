"""The histogram and summary parts of an exposition page, assembled and checked as points.

`exposition.py` collects, per series, the `_bucket{le}`, quantile, `_sum` and `_count` samples of a
page into `Parts`; this module turns them into a `HistogramPoint` (cumulative buckets on the page,
per bucket in the model) or a `SummaryPoint`, and does the checks that name the page line: `le`
and `quantile` must be numbers, quantiles in [0, 1] (`model.valid_quantile`, the rule the OTLP
receiver applies too), bucket and sample counts finite and not negative, buckets cumulative.
"""

from __future__ import annotations

import math

from metricgate.model import (
    QUANTILE_RANGE,
    Exemplar,
    HistogramPoint,
    SummaryPoint,
    valid_quantile,
)
from metricgate.wire.exposition import Exemplar as PageExemplar
from metricgate.wire.exposition import ExpositionError, Labels, parse_float

__all__ = [
    "Parts",
    "check_count",
    "histogram_point",
    "nonempty",
    "page_exemplar",
    "parse_bound",
    "summary_point",
]


class Parts:
    """The parts of one histogram or summary series seen on a page (a plain class: one is made
    per histogram per scrape, and dataclass default factories cost too much there)."""

    __slots__ = (
        "buckets",
        "count",
        "count_line",
        "exemplars",
        "line",
        "quantiles",
        "sum",
        "timestamp",
    )

    def __init__(self, line: int, timestamp: int) -> None:
        self.line = line
        self.timestamp = timestamp
        self.buckets: list[tuple[float, float, int]] = []
        self.quantiles: list[tuple[float, float]] = self.buckets  # type: ignore[assignment]
        """A series is a histogram or a summary, never both: one list serves either."""
        self.sum: float | None = None
        self.count: float | None = None
        self.count_line = 0
        self.exemplars: list[Exemplar] | None = None


def parse_bound(text: str, label: str, line: int) -> float:
    try:
        value = parse_float(text, line)
    except ExpositionError:
        raise ExpositionError(line, f"{label}={text!r} is not a number") from None
    if label == "quantile" and not valid_quantile(value):
        raise ExpositionError(line, f"{QUANTILE_RANGE}: quantile={text!r}")
    if label == "le" and math.isnan(value):
        raise ExpositionError(line, "le=NaN is not a bucket bound")
    return value


def check_count(value: float, line: int, what: str) -> None:
    if not 0.0 <= value < math.inf:
        raise ExpositionError(line, f"{what} {value} is not a finite, non-negative number")


def histogram_point(name: str, found: Parts) -> HistogramPoint:
    buckets = sorted(found.buckets)
    finite = [bucket for bucket in buckets if bucket[0] != math.inf]
    infinite = [bucket for bucket in buckets if bucket[0] == math.inf]
    if len({bound for bound, _, _ in buckets}) != len(buckets):
        raise ExpositionError(buckets[0][2], f"a bucket bound of histogram {name} is repeated")
    if found.count is not None:
        total, total_line = found.count, found.count_line
    elif infinite:
        total, total_line = infinite[0][1], infinite[0][2]
    else:
        total, total_line = (finite[-1][1], finite[-1][2]) if finite else (0.0, found.line)
    per_bucket = []
    previous = 0.0
    for count, line in [(count, line) for _, count, line in finite] + [(total, total_line)]:
        if count < previous:
            raise ExpositionError(line, f"buckets of histogram {name} are not cumulative")
        per_bucket.append(int(count - previous))
        previous = count
    bounds = tuple(bound for bound, _, _ in finite)
    return HistogramPoint(int(total), found.sum, bounds, tuple(per_bucket))


def summary_point(name: str, found: Parts) -> SummaryPoint:
    quantiles = tuple(sorted(found.quantiles))
    if len({q for q, _ in quantiles}) != len(quantiles):
        raise ExpositionError(found.line, f"a quantile of summary {name} is repeated")
    total = found.sum if found.sum is not None else 0.0
    return SummaryPoint(int(found.count or 0), total, quantiles)


def nonempty(labels: Labels) -> Labels:
    """Prometheus treats `k=""` as no label at all."""
    for _, value in labels:
        if not value:
            return tuple(pair for pair in labels if pair[1])
    return labels


def page_exemplar(exemplar: PageExemplar) -> Exemplar:
    trace_id = span_id = ""
    others = []
    for name, value in exemplar.labels:
        if name == "trace_id":
            trace_id = value
        elif name == "span_id":
            span_id = value
        else:
            others.append((name, value))
    stamp = exemplar.timestamp_ms * 1_000_000 if exemplar.timestamp_ms is not None else 0
    return Exemplar(exemplar.value, stamp, trace_id, span_id, tuple(others))
