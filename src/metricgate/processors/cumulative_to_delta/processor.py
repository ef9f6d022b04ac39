"""The `cumulative_to_delta` processor: turn cumulative monotonic sums and histograms into deltas.

Per input Series it remembers the last cumulative value, its timestamp and its start timestamp.
Each later point becomes the difference to the previous one, with the previous point's timestamp
as its start. Rules (the Collector's `cumulativetodelta`, plus ordering checks):
- The first point of a stream has no predecessor. `initial_value: auto` (default) sends its whole
  value as the first delta only when the counter provably started while metricgate was watching:
  its start timestamp is set, not before this processor was created, and before the point's
  timestamp. Otherwise it is dropped (reason `initial`) and only remembered. `keep` always sends
  it, `drop` never does.
- A new start timestamp means the counter restarted: the point is handled as a first point.
- A value that goes down with the same start timestamp (or an unknown one) is a reset without a
  start time: the point is dropped (reason `reset`) and becomes the new base, as in the Collector.
  Histograms: the count or any bucket went down; changed bounds drop with `bucket_mismatch`;
  exponential histograms are compared at a common scale and zero threshold
  (`metricgate.model.arithmetic`).
- A point whose timestamp is not after the previous one is dropped (`out_of_order`); a NaN value
  is dropped (`invalid`); a point flagged "no recorded value" passes on and the stream is
  forgotten.
Non-monotonic sums, gauges, summaries, delta data and metrics outside `include`/`exclude` pass
unchanged. Deltas of histograms carry no min/max (unknown for the interval) except the first.

The per-stream rule is `metricgate.model.delta.Deltas` (`drop_reset`, no repeats, a zero start
time is unknown).

Invariant: the output metric is the input descriptor with DELTA temporality, interned once per
input Metric; every output point's Series belongs to it (cached in the stream's state).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from metricgate.config.types import ComponentConfig, Duration
from metricgate.model import (
    FLAG_NO_RECORDED_VALUE,
    INTERNER,
    Metric,
    MetricKind,
    MetricPoints,
    PointValue,
    Series,
    Temporality,
)
from metricgate.model.arithmetic import combinable, subtract_exponential, subtract_histograms
from metricgate.model.delta import INITIAL, OUT_OF_ORDER, RESET, Deltas, FirstPoint, Last
from metricgate.model.delta import number_increase as _number_increase
from metricgate.pipeline.component import Consumer
from metricgate.pipeline.registry import processor_factory
from metricgate.processing.matching import MatchType, NameMatcher, check_names
from metricgate.processing.streams import StreamProcessor, StreamTable

ConvertedType = Literal["sum", "histogram", "exponential_histogram"]


class MetricSelection(BaseModel):
    """`include` / `exclude`: metrics by name (any of `metrics`) and by type (any of the types)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    match_type: MatchType = "strict"
    metrics: list[str] = []
    metric_types: list[ConvertedType] = []

    @model_validator(mode="after")
    def _check(self) -> MetricSelection:
        if not self.metrics and not self.metric_types:
            raise ValueError("expected metrics or metric_types")
        check_names(self.metrics, self.match_type, ("metrics",))
        return self

    def matcher(self) -> tuple[NameMatcher | None, frozenset[MetricKind] | None]:
        names = NameMatcher(self.metrics, self.match_type) if self.metrics else None
        kinds = frozenset(MetricKind[t.upper()] for t in self.metric_types) or None
        return names, kinds


class CumulativeToDeltaConfig(ComponentConfig):
    """`processors.cumulative_to_delta` (the Collector's `cumulativetodelta` keys)."""

    max_staleness: Duration = 0.0
    """Forget a stream not updated for this long; 0 keeps streams forever."""
    initial_value: Literal["auto", "keep", "drop"] = "auto"
    """What to do with the first point of a stream (see module docstring)."""
    include: MetricSelection | None = None
    """Convert only these metrics (default: all that qualify)."""
    exclude: MetricSelection | None = None
    """Never convert these; wins over `include`."""


_FIRST = {"auto": FirstPoint.KNOWN_START, "keep": FirstPoint.KEEP, "drop": FirstPoint.DROP}


class _Stream(Last[Any]):
    """The stream's last point (`time` is its timestamp), its output Series and when seen."""

    __slots__ = ("seen", "series")

    def __init__(self, series: Series, start: int, time: int, value: Any, seen: float) -> None:
        # Last's slots set here rather than by super().__init__: one call less per new stream
        self.start = start
        self.time = time
        self.value = value
        self.series = series
        self.seen = seen


class CumulativeToDeltaProcessor(StreamProcessor[_Stream]):
    """Differences cumulative streams into deltas (see module docstring)."""

    DROP_REASONS = (INITIAL, RESET, "bucket_mismatch", OUT_OF_ORDER, "invalid")

    def __init__(
        self, component_id: str, config: CumulativeToDeltaConfig, next_consumer: Consumer
    ) -> None:
        super().__init__(
            component_id, next_consumer, StreamTable(component_id, config.max_staleness)
        )
        self.config = config
        self._sums: Deltas[Any] = _deltas(_number_increase, config)
        self._histograms: Deltas[Any] = _deltas(subtract_histograms, config)
        self._exponential: Deltas[Any] = _deltas(subtract_exponential, config)
        self.started_at_ns = time.time_ns()
        self._include = config.include.matcher() if config.include else None
        self._exclude = config.exclude.matcher() if config.exclude else None
        self._metrics: dict[Metric, Metric | None] = {}

    @property
    def started_at_ns(self) -> int:
        """`initial_value: auto` trusts start timestamps at or after this (Unix ns)."""
        return self._sums.since

    @started_at_ns.setter
    def started_at_ns(self, value: int) -> None:
        self._sums.since = self._histograms.since = self._exponential.since = value

    def _convert(
        self, group: MetricPoints, now: float, drops: dict[str, int]
    ) -> MetricPoints | None:
        target = self._target(group.metric)
        if target is None:
            return None
        result = MetricPoints(target)
        self._difference(group, result, now, drops)
        return result

    def _difference(
        self, group: MetricPoints, result: MetricPoints, now: float, drops: dict[str, int]
    ) -> None:
        streams = self.table.streams
        target = result.metric
        is_number = target.kind is MetricKind.SUM
        if is_number:
            deltas = self._sums
        elif target.kind is MetricKind.HISTOGRAM:
            deltas = self._histograms
        else:
            deltas = self._exponential
        kept: list[int] | None = [] if group.exemplars else None
        values: list[Any] = group.values  # floats for sums, points for histograms
        timestamps, starts, flags = group.timestamps, group.start_timestamps, group.flags
        out_series, out_values = result.series, result.values
        out_times, out_starts, out_flags = result.timestamps, result.start_timestamps, result.flags
        for i, series in enumerate(group.series):
            timestamp, start, value = timestamps[i], starts[i], values[i]
            state = streams.get(series)
            if flags[i] & FLAG_NO_RECORDED_VALUE:
                if state is not None:
                    del streams[series]
                result.append(
                    state.series if state else INTERNER.intern_series(target, series.attributes),
                    value,
                    timestamp,
                    state.time if state else 0,
                    flags[i],
                )
                if kept is not None:
                    kept.append(i)
                continue
            if is_number and value != value:
                drops["invalid"] += 1
                continue
            if state is None:
                state = streams[series] = _Stream(
                    INTERNER.intern_series(target, series.attributes), start, timestamp, value, now
                )
                delta = deltas.begin(start, timestamp, value)
                if delta is None:
                    drops[INITIAL] += 1
                    continue
            else:
                previous = state.value
                delta = deltas.advance(state, start, timestamp, value)
                if delta is None:
                    reason = deltas.reason
                    if reason != OUT_OF_ORDER:
                        state.seen = now
                        if reason == RESET and not combinable(value, previous):
                            reason = "bucket_mismatch"
                    drops[reason] += 1
                    continue
                state.seen = now
            out_series.append(state.series)
            out_values.append(delta)
            out_times.append(timestamp)
            out_starts.append(deltas.window_start)
            out_flags.append(flags[i])
            if kept is not None:
                kept.append(i)
        if kept is not None:
            result.take_exemplars(group, kept)

    def _kept(self, state: _Stream) -> tuple[PointValue, int, int]:
        return state.value, state.time, state.start

    def _revive(
        self, series: Series, value: Any, timestamp: int, start: int, now: float
    ) -> _Stream | None:
        target = self._target(series.metric)
        if target is None:
            return None
        return _Stream(
            INTERNER.intern_series(target, series.attributes), start, timestamp, value, now
        )

    def _kept_fields(self) -> dict[str, Any]:
        # `initial_value: auto` keeps trusting counters that started after the first start.
        return {"started_at_ns": self.started_at_ns}

    def _restore_fields(self, fields: dict[str, Any]) -> None:
        started = fields.get("started_at_ns")
        if not isinstance(started, int) or isinstance(started, bool):
            raise ValueError(f"started_at_ns is {started!r}")
        self.started_at_ns = started

    def _target(self, metric: Metric) -> Metric | None:
        """The DELTA descriptor `metric` converts to (cached), or None when it passes."""
        target = self._metrics.get(metric, metric)
        return self._delta_metric(metric) if target is metric else target

    def _delta_metric(self, metric: Metric) -> Metric | None:
        """The DELTA descriptor `metric` converts to, or None when it passes unchanged."""
        target: Metric | None = None
        if (
            metric.temporality is Temporality.CUMULATIVE
            and (
                metric.kind in (MetricKind.HISTOGRAM, MetricKind.EXPONENTIAL_HISTOGRAM)
                or metric.is_counter
            )
            and _selected(self._include, metric, default=True)
            and not _selected(self._exclude, metric, default=False)
        ):
            target = INTERNER.intern_metric_like(metric, temporality=Temporality.DELTA)
        self._metrics[metric] = target
        return target


def _selected(
    selection: tuple[NameMatcher | None, frozenset[MetricKind] | None] | None,
    metric: Metric,
    default: bool,
) -> bool:
    if selection is None:
        return default
    names, kinds = selection
    return (names is None or names.matches(metric.name)) and (kinds is None or metric.kind in kinds)


def _deltas(subtract: Callable[[Any, Any], Any], config: CumulativeToDeltaConfig) -> Deltas[Any]:
    """The Collector's rules: a value that went down is dropped and becomes the base."""
    return Deltas(
        subtract,
        _FIRST[config.initial_value],
        drop_reset=True,
        repeats=False,
        zero_start_unknown=True,
    )


FACTORY = processor_factory(
    "cumulative_to_delta",
    CumulativeToDeltaConfig,
    CumulativeToDeltaProcessor,
    "turns cumulative monotonic sums and histograms into deltas",
)
