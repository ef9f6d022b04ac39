"""OTLP values -> metricgate model, shared by the protobuf and the JSON decoder.

Both decoders read their encoding into plain Python values and make every decision through the
functions here, so the same data gives the same `Batch` whichever encoding carried it.

Translation rules (a point that breaks one is rejected and counted in the response's
`partial_success`; the rest of the request is accepted):

- a metric with an empty name: all its points are rejected;
- a sum, histogram or exponential histogram whose `aggregation_temporality` is UNSPECIFIED (or
  not a known value): all its points are rejected; a metric with no data at all has no points;
- a point with `time_unix_nano` 0 is rejected (no exporter can place it in time);
- gauge and sum values may be NaN or +-Inf: OTLP allows them, they are kept; a number point
  with neither `as_double` nor `as_int` reads as 0, as protobuf defaults do;
- histogram: `explicit_bounds` must be finite and strictly increasing; `bucket_counts` must be
  empty or have `len(explicit_bounds) + 1` entries; when present they must add up to `count`;
  the bounds tuple is interned per metric, so every point of a metric shares one object;
- exponential histogram: `scale` must lie in [-10, 20] (the range SDKs use; below it bucket
  bounds overflow a double); `zero_count` plus all bucket counts must equal `count`;
- summary: every quantile must lie in [0, 1]; quantiles are sorted;
- a point flagged NO_RECORDED_VALUE is kept with its flags (staleness): a number point's value
  becomes NaN; a histogram-like point is not validated and, if invalid, carries an empty value.

Attribute values map to str, bool, int, float, None (empty value), tuple (array), tuple of
(key, value) pairs sorted by key (kvlist) and, for bytes, their standard base64 text (as the
Collector prints bytes). Duplicate keys keep the last value. Trace and span ids of exemplars
become lowercase hex.

Invariant: nothing here may raise on any input the decoders can produce except `DecodeError`.
"""

from __future__ import annotations

import math
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise
from operator import itemgetter
from typing import Final

from metricgate.model import (
    FLAG_NO_RECORDED_VALUE,
    QUANTILE_RANGE,
    Attributes,
    AttributeValue,
    Batch,
    BucketRange,
    ExponentialHistogramPoint,
    HistogramPoint,
    Metric,
    MetricKind,
    MetricPoints,
    SummaryPoint,
    Temporality,
    valid_quantile,
)
from metricgate.model.caches import BoundedTable

NAN = math.nan

NO_NAME = "metric has no name"
BAD_TEMPORALITY = "aggregation_temporality is unspecified or unknown"
NO_TIME = "time_unix_nano is 0"
BAD_BOUNDS = "histogram explicit_bounds are not finite and strictly increasing"
BUCKETS_LENGTH = "histogram bucket_counts length is not len(explicit_bounds) + 1"
HISTOGRAM_COUNT = "histogram count is not the sum of bucket_counts"
EXP_SCALE = "exponential histogram scale is outside [-10, 20]"
EXP_COUNT = "exponential histogram count is not zero_count plus the bucket counts"
QUANTILE = QUANTILE_RANGE

KINDS = {
    "gauge": MetricKind.GAUGE,
    "sum": MetricKind.SUM,
    "histogram": MetricKind.HISTOGRAM,
    "exponential_histogram": MetricKind.EXPONENTIAL_HISTOGRAM,
    "summary": MetricKind.SUMMARY,
}
"""OTLP `Metric.data` field name -> kind."""

_TEMPORALITIES = {1: Temporality.DELTA, 2: Temporality.CUMULATIVE}
EMPTY_BUCKETS = BucketRange(0, ())


class DecodeError(Exception):
    """The request body is not a valid OTLP metrics request (HTTP 400, INVALID_ARGUMENT)."""


@dataclass(slots=True)
class DecodeResult:
    """A decoded request: the points kept and what was rejected, for `partial_success`."""

    batch: Batch
    rejected: int = 0
    error_message: str = ""
    stamped: bool = False
    """The decoder stamped the tenant on every series (see `decode.Stamp`)."""
    forged: int = 0
    """Series, first seen in this request, that carried another tenant (when `stamped`)."""


class Rejections:
    """Counts rejected points by reason and summarises them in one message."""

    __slots__ = ("_examples", "_reasons", "count", "forged")

    def __init__(self) -> None:
        self.count = 0
        self.forged = 0
        """Not a rejection: new series whose forged tenant the decoder replaced."""
        self._reasons: Counter[str] = Counter()
        self._examples: dict[str, str] = {}

    def add(self, reason: str, metric: str, points: int = 1) -> None:
        if points <= 0:
            return
        self.count += points
        self._reasons[reason] += points
        self._examples.setdefault(reason, metric)

    def message(self) -> str:
        if not self.count:
            return ""
        parts = [
            f"{reason} ({count} points, e.g. metric {self._examples[reason]!r})"
            for reason, count in self._reasons.most_common(5)
        ]
        more = len(self._reasons) - len(parts)
        tail = f"; and {more} more reasons" if more > 0 else ""
        return f"rejected {self.count} data points: " + "; ".join(parts) + tail


class Groups:
    """The points of one request, one `MetricPoints` per metric, in first-seen order."""

    __slots__ = ("_groups",)

    def __init__(self) -> None:
        self._groups: dict[Metric, MetricPoints] = {}

    def get(self, metric: Metric) -> MetricPoints:
        group = self._groups.get(metric)
        if group is None:
            group = self._groups[metric] = MetricPoints(metric)
        return group

    def result(self, rejections: Rejections, stamped: bool = False) -> DecodeResult:
        batch = Batch([g for g in self._groups.values() if g.series])
        message = rejections.message()
        return DecodeResult(batch, rejections.count, message, stamped, rejections.forged)


def descriptor(
    data: str, temporality: int, monotonic: bool
) -> tuple[MetricKind, Temporality, bool] | None:
    """Kind, temporality and monotonicity of a metric; None when its temporality is invalid."""
    kind = KINDS[data]
    if kind is MetricKind.GAUGE or kind is MetricKind.SUMMARY:
        return kind, Temporality.UNSPECIFIED, False
    known = _TEMPORALITIES.get(temporality)
    if known is None:
        return None
    return kind, known, monotonic and kind is MetricKind.SUM


_SHARED_PAIRS: BoundedTable[tuple[str, AttributeValue], tuple[str, AttributeValue]] = BoundedTable(
    1_000_000
)


def canonical_attributes(pairs: Iterable[tuple[str, AttributeValue]]) -> Attributes:
    """Sorted by key, last value wins for a repeated key.

    Pairs are shared between series (`("method", "GET")` is one object for every series that has
    it, see `shared_pair`) and their strings interned: most of a series' memory is its
    attributes, and most attribute pairs repeat across series.
    """
    return tuple([shared_pair(*pair) for pair in sorted(dict(pairs).items())])


_SEEN_ONCE: BoundedTable[tuple[str, AttributeValue], None] = BoundedTable(100_000)


def shared_pair(key: str, value: AttributeValue) -> tuple[str, AttributeValue]:
    """The one object for the attribute `key=value` (strings interned), from its second sight
    on: a value that never repeats (an id, one per series) is not worth a table entry and an
    interned string, so a pair seen once is only remembered as seen (in a table of 100k that
    forgets everything when full). The shared table forgets everything when it passes its bound
    (1M pairs); both are emptied when the memory limiter releases caches."""
    pair = (key, value)
    try:
        found = _SHARED_PAIRS.entries.get(pair)
    except TypeError:  # an unhashable value cannot occur, but never fail decoding on it
        return pair
    if found is not None:
        return found
    if pair not in _SEEN_ONCE.entries:
        pair = (sys.intern(key), value)  # keys are few: shared at once
        _SEEN_ONCE.put(pair, None)
        return pair
    found = (sys.intern(key), sys.intern(value) if isinstance(value, str) else value)
    return _SHARED_PAIRS.put(found, found)


_key: Final = itemgetter(0)


def ordered_attributes(pairs: list[tuple[str, AttributeValue]]) -> Attributes:
    """`canonical_attributes` of pairs that are shared already (`shared_pair`); sorts `pairs`."""
    pairs.sort(key=_key)  # stable: of a repeated key, the last value stays last
    if len(pairs) > 1 and len(set(map(_key, pairs))) != len(pairs):
        return canonical_attributes(pairs)
    return tuple(pairs)


def valid_bounds(bounds: tuple[float, ...]) -> bool:
    return all(math.isfinite(b) for b in bounds) and all(a < b for a, b in pairwise(bounds))


class BoundsTable:
    """Per metric: one shared tuple per distinct bounds; invalid bounds map to None."""

    __slots__ = ("_table",)

    def __init__(self) -> None:
        self._table: dict[tuple[float, ...], tuple[float, ...] | None] = {}

    def intern(self, bounds: tuple[float, ...]) -> tuple[float, ...] | None:
        try:
            return self._table[bounds]
        except KeyError:
            pass
        # NaN != NaN, so bounds holding NaN never hit the table; they are invalid anyway.
        found = bounds if valid_bounds(bounds) else None
        if len(self._table) < 64:
            self._table[bounds] = found
        return found


_EMPTY_HISTOGRAM = HistogramPoint(0, None, (), ())
_EMPTY_EXPONENTIAL = ExponentialHistogramPoint(0, None, 0, 0, EMPTY_BUCKETS, EMPTY_BUCKETS)
_EMPTY_SUMMARY = SummaryPoint(0, 0.0, ())


def histogram_point(
    count: int,
    total: float | None,
    bounds: tuple[float, ...] | None,
    counts: tuple[int, ...],
    minimum: float | None,
    maximum: float | None,
    flags: int,
) -> HistogramPoint | str:
    """The point, or the reason it is rejected (`bounds` None: invalid bounds)."""
    if bounds is None:
        reason = BAD_BOUNDS
    elif counts and len(counts) != len(bounds) + 1:
        reason = BUCKETS_LENGTH
    elif counts and sum(counts) != count:
        reason = HISTOGRAM_COUNT
    else:
        return HistogramPoint(count, total, bounds, counts, minimum, maximum)
    return _EMPTY_HISTOGRAM if flags & FLAG_NO_RECORDED_VALUE else reason


def exponential_point(
    count: int,
    total: float | None,
    scale: int,
    zero_count: int,
    positive: BucketRange,
    negative: BucketRange,
    zero_threshold: float,
    minimum: float | None,
    maximum: float | None,
    flags: int,
) -> ExponentialHistogramPoint | str:
    """The point, or the reason it is rejected."""
    if not -10 <= scale <= 20:
        reason = EXP_SCALE
    elif zero_count + sum(positive.counts) + sum(negative.counts) != count:
        reason = EXP_COUNT
    else:
        return ExponentialHistogramPoint(
            count, total, scale, zero_count, positive, negative, zero_threshold, minimum, maximum
        )
    return _EMPTY_EXPONENTIAL if flags & FLAG_NO_RECORDED_VALUE else reason


def summary_point(
    count: int, total: float, quantiles: list[tuple[float, float]], flags: int
) -> SummaryPoint | str:
    """The point (quantiles sorted), or the reason it is rejected."""
    if all(valid_quantile(q) for q, _ in quantiles):
        return SummaryPoint(count, total, tuple(sorted(quantiles)))
    return _EMPTY_SUMMARY if flags & FLAG_NO_RECORDED_VALUE else QUANTILE


def number_value(value: float, flags: int) -> float:
    """A gauge or sum value as the model stores it: NaN when no value was recorded."""
    return NAN if flags & FLAG_NO_RECORDED_VALUE else value


def bucket_range(offset: int, counts: tuple[int, ...]) -> BucketRange:
    """One side of an exponential histogram; without buckets the offset means nothing."""
    return BucketRange(offset, counts) if counts else EMPTY_BUCKETS
