"""The unit of data every component consumes: a `Batch` of per-metric point groups.

A `Batch` holds one `MetricPoints` per metric descriptor. Each `MetricPoints` stores its points as
parallel flat lists (series, values, timestamps, start timestamps, flags), so the hot path appends
to lists and never allocates an object per number point.

Invariants a component must not break:
- All parallel lists of a `MetricPoints` have the same length; index i is one point.
- `series[i].metric is metric` for every i (same descriptor, same interned object).
- Values are floats for GAUGE and SUM, `HistogramPoint` for HISTOGRAM, and so on (see
  `metricgate.model.points`).
- Batches handed to `consume()` are shared between fan-out branches: never mutate one you did not
  build. A processor that changes data builds a new batch (it may reuse unchanged `MetricPoints`).
- Timestamps are Unix nanoseconds (ints). `start_timestamps` is 0 where unknown.
- `FLAG_NO_RECORDED_VALUE` in `flags[i]` means the series ended (staleness); its value is NaN.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import compress

from metricgate.model.points import Exemplar, PointValue
from metricgate.model.series import Metric, Series

FLAG_NO_RECORDED_VALUE = 1
"""OTLP `DataPointFlags.NO_RECORDED_VALUE_MASK`."""


@dataclass(slots=True)
class MetricPoints:
    """Points of one metric, as parallel lists (see module docstring)."""

    metric: Metric
    series: list[Series] = field(default_factory=list)
    values: list[PointValue] = field(default_factory=list)
    timestamps: list[int] = field(default_factory=list)
    start_timestamps: list[int] = field(default_factory=list)
    flags: list[int] = field(default_factory=list)
    exemplars: dict[int, tuple[Exemplar, ...]] | None = None
    """Exemplars by point index; None (not an empty dict) when no point has any."""

    def append(
        self,
        series: Series,
        value: PointValue,
        timestamp: int,
        start_timestamp: int = 0,
        flags: int = 0,
    ) -> None:
        self.series.append(series)
        self.values.append(value)
        self.timestamps.append(timestamp)
        self.start_timestamps.append(start_timestamp)
        self.flags.append(flags)

    def add_exemplars(self, index: int, exemplars: tuple[Exemplar, ...]) -> None:
        if self.exemplars is None:
            self.exemplars = {}
        self.exemplars[index] = exemplars

    def __len__(self) -> int:
        return len(self.series)

    def rows(self) -> Iterator[tuple[Series, PointValue, int, int, int]]:
        """(series, value, timestamp, start timestamp, flags) of each point, in order: the
        columns zipped once per group, so a point costs what a hand-written `zip` costs."""
        return zip(
            self.series,
            self.values,
            self.timestamps,
            self.start_timestamps,
            self.flags,
            strict=True,
        )

    def select(self, indexes: list[int]) -> MetricPoints:
        """A new group holding only the points at `indexes` (in that order)."""
        out = MetricPoints(
            self.metric,
            [self.series[i] for i in indexes],
            [self.values[i] for i in indexes],
            [self.timestamps[i] for i in indexes],
            [self.start_timestamps[i] for i in indexes],
            [self.flags[i] for i in indexes],
        )
        out.take_exemplars(self, indexes)
        return out

    def compress(self, mask: list[bool]) -> MetricPoints:
        """A new group holding the points whose `mask` entry is true: `select` at C speed."""
        out = MetricPoints(
            self.metric,
            list(compress(self.series, mask)),
            list(compress(self.values, mask)),
            list(compress(self.timestamps, mask)),
            list(compress(self.start_timestamps, mask)),
            list(compress(self.flags, mask)),
        )
        if self.exemplars:
            out.take_exemplars(self, [i for i, kept in enumerate(mask) if kept])
        return out

    def take_exemplars(self, source: MetricPoints, indexes: list[int]) -> None:
        """Copy `source`'s exemplars: point `indexes[i]` of `source` is point i here."""
        if not source.exemplars:
            return
        for new_index, old_index in enumerate(indexes):
            found = source.exemplars.get(old_index)
            if found:
                self.add_exemplars(new_index, found)


@dataclass(slots=True)
class Batch:
    """A list of per-metric point groups; what receivers produce and `consume()` takes."""

    metrics: list[MetricPoints] = field(default_factory=list)

    def point_count(self) -> int:
        return sum(len(m.series) for m in self.metrics)

    def __iter__(self) -> Iterator[MetricPoints]:
        return iter(self.metrics)

    def __bool__(self) -> bool:
        return any(m.series for m in self.metrics)
