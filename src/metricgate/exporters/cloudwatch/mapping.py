"""`Batch` -> CloudWatch `MetricDatum` dicts (botocore's `PutMetricData` shape).

- gauge, delta sum, non-monotonic sum -> `Value`;
- cumulative monotonic sum -> `Value` = the delta since the series' last point;
- histogram, exponential histogram -> `StatisticValues {SampleCount, Sum, Minimum, Maximum}`
  (deltas when cumulative); min/max from the point, else estimated from the (delta) bucket
  bounds, else the mean; a window with no samples sends nothing;
- summary -> `StatisticValues` from count/sum deltas, min/max from the 0 and 1 quantiles when
  present (else the mean); other quantiles are not sent (CloudWatch takes no percentiles here);
- NaN/Inf values, points older than 2 weeks or more than 2 h ahead are dropped and counted;
  points flagged NO_RECORDED_VALUE are skipped.

Cumulative state (`metricgate.model.delta`), per series: (start time, time, values). The first
point of a series, and a reset (a new start time or a smaller count), is sent as its whole value
when its start time is known (0 < start < time): the delta since the start is then exact. Unlike
the Collector's awsemf, which drops it. Without a start time it only sets the baseline. A point
older than the last one is dropped (`out_of_order`). The tables are bounded and forget everything
past their bound.

Dimensions: point attributes (plus `resource_to_dimensions`), names over 255 and values over 1024
characters truncated, empty values left out, and past 30 the first 30 by name kept; each of these
is counted once per series (dimension sets are cached per series). `metric_declarations` and
the rollup option restrict or add sets.

Invariant: `map()` advances the cumulative state: run it once per batch, never per attempt (on
a partial failure the exporters keep the requests still owed instead).
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any, Final

from metricgate.exporters.cloudwatch.config import CloudWatchExporterConfig
from metricgate.exporters.cloudwatch.units import cloudwatch_unit
from metricgate.model import (
    FLAG_NO_RECORDED_VALUE,
    AttributeValue,
    Batch,
    ExponentialHistogramPoint,
    HistogramPoint,
    Metric,
    MetricKind,
    MetricPoints,
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
from metricgate.regex import GoRegex

MAX_AGE_S: Final = 14 * 24 * 3600
MAX_FUTURE_S: Final = 2 * 3600
MAX_DIMENSIONS: Final = 30
MAX_NAME: Final = 255
MAX_VALUE: Final = 1024
MAX_MAGNITUDE: Final = 2.0**360
_MAX_STATE: Final = 2_000_000

Datum = dict[str, Any]
Dimensions = tuple[tuple[str, str], ...]


def dimension_value(value: AttributeValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return json.dumps(value, default=str, separators=(",", ":"))
    return "" if value is None else str(value)


class Mapper:
    """Maps batches to datum dicts; holds the cumulative state."""

    def __init__(self, config: CloudWatchExporterConfig) -> None:
        self.config = config
        self.dropped: Counter[str] = Counter()
        """Points (or, for dimension fixes, data) affected, by reason, since `take_dropped()`."""
        self._numbers: Deltas[float] = Deltas(number_increase, FirstPoint.KNOWN_START)
        self._counts: Deltas[tuple[float, ...]] = Deltas(counts_increase, FirstPoint.KNOWN_START)
        """(count, sum[, buckets]) of cumulative histograms and summaries."""
        self._declarations = [
            ([GoRegex(p, anchored=False) for p in d.metric_name_selectors], d.dimensions)
            for d in config.metric_declarations
        ]
        self._dimensions: dict[Series, list[Dimensions]] = {}

    def take_dropped(self) -> Counter[str]:
        dropped, self.dropped = self.dropped, Counter()
        return take_out_of_order(dropped, self._numbers, self._counts)

    def map(
        self, batch: Batch, now_s: float | None = None, followers: list[int] | None = None
    ) -> list[Datum]:
        """The data of `batch`; `followers` gets the indexes of the data that continue a point's
        first one (its other dimension sets), so requests can say how many points they carry."""
        now = time.time() if now_s is None else now_s
        oldest, newest = now - MAX_AGE_S, now + MAX_FUTURE_S
        if len(self._numbers.last) + len(self._counts.last) > _MAX_STATE:
            self._numbers.last.clear()
            self._counts.last.clear()
        if len(self._dimensions) > _MAX_STATE:
            self._dimensions.clear()
        out: list[Datum] = []
        for group in batch.metrics:
            unit = cloudwatch_unit(group.metric.unit)
            for series, value, ts, start, flags in group.rows():
                if flags & FLAG_NO_RECORDED_VALUE:
                    continue
                if not oldest <= ts / 1e9 <= newest:
                    self.dropped["outside_time_window"] += 1
                    continue
                if isinstance(value, float | int):
                    fields = self._number(group, series, float(value), ts, start)
                elif isinstance(value, HistogramPoint | ExponentialHistogramPoint):
                    fields = self._histogram(group.metric, series, value, ts, start)
                elif isinstance(value, SummaryPoint):
                    fields = self._summary(series, value, ts, start)
                else:
                    fields = None
                if fields is None:
                    continue
                stamp = datetime.fromtimestamp(ts / 1e9, UTC)
                dimension_sets = self._dimension_sets(series)
                if followers is not None and len(dimension_sets) > 1:
                    first = len(out)
                    followers.extend(range(first + 1, first + len(dimension_sets)))
                for dimensions in dimension_sets:
                    datum: Datum = {
                        "MetricName": group.metric.name[:MAX_NAME],
                        "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions],
                        "Timestamp": stamp,
                        "Unit": unit,
                        "StorageResolution": self.config.storage_resolution,
                        **fields,
                    }
                    out.append(datum)
        return out

    def _finite(self, *values: float) -> bool:
        if all(math.isfinite(v) and abs(v) <= MAX_MAGNITUDE for v in values):
            return True
        self.dropped["not_finite"] += 1
        return False

    def _number(
        self, group: MetricPoints, series: Series, value: float, ts: int, start: int
    ) -> Datum | None:
        if not self._finite(value):
            return None
        metric = group.metric
        if (
            metric.kind is MetricKind.SUM
            and metric.monotonic
            and metric.temporality is Temporality.CUMULATIVE
        ):
            delta = self._numbers.delta(series, start, ts, value)
            if delta is None:
                return None
            value = delta
        return {"Value": value}

    def _histogram(
        self,
        metric: Metric,
        series: Series,
        value: HistogramPoint | ExponentialHistogramPoint,
        ts: int,
        start: int,
    ) -> Datum | None:
        total = value.sum if value.sum is not None else math.nan
        buckets: tuple[float, ...] = ()
        if isinstance(value, HistogramPoint):
            buckets = tuple(float(c) for c in value.bucket_counts)
        counts: tuple[float, ...] = (float(value.count), total, *buckets)
        if metric.temporality is Temporality.CUMULATIVE:
            window = self._counts.delta(series, start, ts, counts)
            if window is None:
                return None
            counts = window
        count, total = counts[0], counts[1]
        if count <= 0:
            return None
        if math.isnan(total):
            total = 0.0 if value.min is None or value.max is None else (value.min + value.max) / 2
            total *= count
        low, high = value.min, value.max
        if (low is None or high is None) and isinstance(value, HistogramPoint):
            low, high = _bucket_range(value.bounds, counts[2:], low, high, total / count)
        mean = total / count
        low = min(mean, low if low is not None else mean)
        high = max(mean, high if high is not None else mean)
        if not self._finite(total, low, high):
            return None
        return {
            "StatisticValues": {"SampleCount": count, "Sum": total, "Minimum": low, "Maximum": high}
        }

    def _summary(self, series: Series, value: SummaryPoint, ts: int, start: int) -> Datum | None:
        if not self._finite(value.sum):
            return None
        window = self._counts.delta(series, start, ts, (float(value.count), value.sum))
        if window is None or window[0] <= 0:
            return None
        count, total = window
        mean = total / count
        low = high = mean
        for quantile, found in value.quantiles:
            if quantile == 0.0 and math.isfinite(found):
                low = min(low, found)
            elif quantile == 1.0 and math.isfinite(found):
                high = max(high, found)
        return {
            "StatisticValues": {"SampleCount": count, "Sum": total, "Minimum": low, "Maximum": high}
        }

    def _dimension_sets(self, series: Series) -> list[Dimensions]:
        found = self._dimensions.get(series)
        if found is None:
            found = self._dimensions[series] = self._build_dimension_sets(series)
        return found

    def _build_dimension_sets(self, series: Series) -> list[Dimensions]:
        pairs: dict[str, str] = {}
        resource = series.metric.resource
        for key in self.config.resource_to_dimensions:
            value = resource.get(key)
            if value is not None:
                pairs[key] = dimension_value(value)
        for key, attribute in series.attributes:
            pairs[key] = dimension_value(attribute)
        base = self._clean(pairs)
        sets: list[Dimensions] = []
        if self._declarations:
            name = series.metric.name
            for selectors, dimension_sets in self._declarations:
                if any(s.matches(name) for s in selectors):
                    present = dict(base)
                    for keys in dimension_sets:
                        if all(k in present for k in keys):
                            sets.append(tuple(sorted((k, present[k]) for k in set(keys))))
            if not sets:
                return []
        else:
            sets.append(base)
        rollup = self.config.dimension_rollup_option
        if rollup != "NoDimensionRollup":
            if rollup == "ZeroAndSingleDimensionRollup":
                sets.append(())
            sets.extend((pair,) for pair in base)
        unique: dict[Dimensions, None] = dict.fromkeys(sets)
        return list(unique)

    def _clean(self, pairs: dict[str, str]) -> Dimensions:
        out: dict[str, str] = {}
        truncated = empty = False
        for key, value in pairs.items():
            if not value or not key:
                empty = True
                continue
            if len(key) > MAX_NAME or len(value) > MAX_VALUE:
                truncated = True
                key, value = key[:MAX_NAME], value[:MAX_VALUE]
            out[key] = value
        if truncated:
            self.dropped["dimension_truncated"] += 1
        if empty:
            self.dropped["dimension_empty"] += 1
        items = sorted(out.items())
        if len(items) > MAX_DIMENSIONS:
            self.dropped["dimensions_over_30"] += 1
            items = items[:MAX_DIMENSIONS]
        return tuple(items)


def _bucket_range(
    bounds: tuple[float, ...],
    counts: tuple[float, ...],
    low: float | None,
    high: float | None,
    mean: float,
) -> tuple[float | None, float | None]:
    """(min, max) bounds from the first and last non-empty buckets, keeping those known."""
    filled = [i for i, c in enumerate(counts) if c > 0]
    if not filled or len(counts) != len(bounds) + 1:
        return low, high
    first, last = filled[0], filled[-1]
    if low is None:
        low = bounds[first - 1] if first > 0 else min(bounds[0], mean) if bounds else mean
    if high is None:
        high = bounds[last] if last < len(bounds) else max(bounds[-1], mean) if bounds else mean
    return low, high
