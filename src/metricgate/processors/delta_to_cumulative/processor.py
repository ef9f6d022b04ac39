"""The `delta_to_cumulative` processor: turn delta sums and histograms into cumulative ones.

Per input Series it keeps a running total (sums: monotonic or not; histograms bucket-wise;
exponential histograms at a common scale and zero threshold, see `metricgate.model.arithmetic`).
Each delta point becomes a cumulative point whose start timestamp is the stream's first start
timestamp (the first point's timestamp when that is unknown). Rules:
- a point whose timestamp is not after the stream's last one (out of order, duplicate) is dropped,
  reason `out_of_order`;
- an explicit histogram whose bounds change restarts its stream at that point;
- a NaN delta is dropped, reason `invalid`; a point flagged "no recorded value" (the series
  ended) is passed on as such and the stream forgotten;
- streams not updated for `max_stale` are forgotten (a later point starts a new stream);
- with `max_streams` set, points of new streams beyond it are dropped, reason `max_streams`.
Everything else (gauges, summaries, cumulative data) passes unchanged.

Invariant: the output metric is the input descriptor with CUMULATIVE temporality, interned once
per input Metric; every output point's Series belongs to it (cached in the stream's state).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

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
from metricgate.model.arithmetic import add
from metricgate.pipeline.component import Consumer
from metricgate.pipeline.registry import processor_factory
from metricgate.processing.streams import StreamProcessor, StreamTable

_CONVERTED = (MetricKind.SUM, MetricKind.HISTOGRAM, MetricKind.EXPONENTIAL_HISTOGRAM)


class DeltaToCumulativeConfig(ComponentConfig):
    """`processors.delta_to_cumulative` (the Collector's `deltatocumulative` keys)."""

    max_stale: Duration = 300.0
    """Forget a stream not updated for this long; 0 keeps streams forever."""
    max_streams: int = Field(default=0, ge=0)
    """Most streams tracked at once; points of new streams beyond it are dropped. 0: no limit."""


class _Stream:
    __slots__ = ("last", "seen", "series", "start", "total")

    def __init__(self, series: Series, start: int, last: int, total: Any, seen: float) -> None:
        self.series = series
        self.start = start
        self.last = last
        self.total = total
        self.seen = seen


class DeltaToCumulativeProcessor(StreamProcessor[_Stream]):
    """Accumulates delta streams into cumulative ones (see module docstring)."""

    DROP_REASONS = ("out_of_order", "invalid", "max_streams")

    def __init__(
        self, component_id: str, config: DeltaToCumulativeConfig, next_consumer: Consumer
    ) -> None:
        super().__init__(
            component_id,
            next_consumer,
            StreamTable(component_id, config.max_stale, config.max_streams),
        )
        self._metrics: dict[Metric, Metric] = {}

    def _convert(
        self, group: MetricPoints, now: float, drops: dict[str, int]
    ) -> MetricPoints | None:
        metric = group.metric
        if metric.temporality is not Temporality.DELTA or metric.kind not in _CONVERTED:
            return None
        result = MetricPoints(self._metrics.get(metric) or self._cumulative(metric))
        self._accumulate(group, result, now, drops)
        return result

    def _accumulate(
        self, group: MetricPoints, result: MetricPoints, now: float, drops: dict[str, int]
    ) -> None:
        streams = self.table.streams
        target = result.metric
        is_number = target.kind is MetricKind.SUM
        kept: list[int] | None = [] if group.exemplars else None
        out_series, out_values = result.series, result.values
        out_times, out_starts, out_flags = result.timestamps, result.start_timestamps, result.flags
        values, timestamps, starts, flags = (
            group.values,
            group.timestamps,
            group.start_timestamps,
            group.flags,
        )
        for i, series in enumerate(group.series):
            timestamp = timestamps[i]
            state = streams.get(series)
            if flags[i] & FLAG_NO_RECORDED_VALUE:
                if state is not None:
                    del streams[series]
                out_series.append(
                    state.series if state else INTERNER.intern_series(target, series.attributes)
                )
                out_values.append(values[i])
                out_times.append(timestamp)
                out_starts.append(state.start if state else starts[i])
                out_flags.append(flags[i])
                if kept is not None:
                    kept.append(i)
                continue
            value = values[i]
            if state is None:
                if is_number and value != value:
                    drops["invalid"] += 1
                    continue
                if self.table.full():
                    drops["max_streams"] += 1
                    continue
                state = streams[series] = _Stream(
                    INTERNER.intern_series(target, series.attributes),
                    starts[i] or timestamp,
                    timestamp,
                    value,
                    now,
                )
            elif timestamp <= state.last:
                drops["out_of_order"] += 1
                continue
            elif is_number:
                if value != value:
                    drops["invalid"] += 1
                    continue
                state.total += value
                state.last = timestamp
                state.seen = now
            else:
                total = add(state.total, value)
                if total is None:  # bucket layout changed: start over from this point
                    state.start, state.total = starts[i] or timestamp, value
                else:
                    state.total = total
                state.last = timestamp
                state.seen = now
            out_series.append(state.series)
            out_values.append(state.total)
            out_times.append(timestamp)
            out_starts.append(state.start)
            out_flags.append(flags[i])
            if kept is not None:
                kept.append(i)
        if kept is not None:
            result.take_exemplars(group, kept)

    def _kept(self, state: _Stream) -> tuple[PointValue, int, int]:
        return state.total, state.last, state.start

    def _revive(
        self, series: Series, value: Any, timestamp: int, start: int, now: float
    ) -> _Stream | None:
        metric = series.metric
        if metric.temporality is not Temporality.DELTA or metric.kind not in _CONVERTED:
            return None
        target = self._metrics.get(metric) or self._cumulative(metric)
        return _Stream(
            INTERNER.intern_series(target, series.attributes), start, timestamp, value, now
        )

    def _cumulative(self, metric: Metric) -> Metric:
        target = INTERNER.intern_metric_like(metric, temporality=Temporality.CUMULATIVE)
        self._metrics[metric] = target
        return target


FACTORY = processor_factory(
    "delta_to_cumulative",
    DeltaToCumulativeConfig,
    DeltaToCumulativeProcessor,
    "accumulates delta sums and histograms into cumulative ones",
)
