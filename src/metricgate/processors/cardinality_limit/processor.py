"""The `cardinality_limit` processor: the component around `SeriesTracker` and `Folder`.

Per batch: one clock reading (rotating generations when a window boundary passed), then per metric
group one C-level pass that finds the series not in the current admitted generation. A group whose
series are all admitted is handed on untouched (no copy); otherwise the missing series are
classified once each, refused points are folded or dropped, and a new group is built.

Invariant: the processor never mutates a batch it was given (batches are shared between pipelines);
self-telemetry is updated once per batch, never per point.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from itertools import filterfalse

from metricgate.model import Batch, MetricPoints
from metricgate.pipeline.component import Consumer, Processor
from metricgate.pipeline.host import Host
from metricgate.pipeline.registry import processor_factory
from metricgate.processors.cardinality_limit import offenders
from metricgate.processors.cardinality_limit.config import CardinalityLimitConfig
from metricgate.processors.cardinality_limit.fold import Folder, is_overflow_series
from metricgate.processors.cardinality_limit.tracker import Rotation, SeriesTracker
from metricgate.telemetry.metrics import SelfMetrics

DROP_REASON = "cardinality_limit"
"""`metricgate_processor_dropped_points` reason for points of refused series in drop mode."""
OTHER_METRICS = "_other"
"""Self-metric `metric` label for names beyond the first `telemetry_metrics`."""
_DRAIN_CHUNK = 20_000


class CardinalityLimiter(Processor):
    """Caps active series globally, per metric and per label value (see the package docstring)."""

    def __init__(
        self,
        component_id: str,
        config: CardinalityLimitConfig,
        next_consumer: Consumer,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(component_id, next_consumer)
        self.config = config
        self.overflow = config.on_limit == "overflow"
        self._clock = clock
        self.tracker = SeriesTracker(
            max_series=config.max_series,
            max_series_per_metric=config.max_series_per_metric,
            per_label=tuple((limit.label, limit.max_series) for limit in config.label_limits),
            window=config.window,
            fixed=config.window_type == "fixed",
            max_refused=config.max_refused_series,
            max_label_values=config.max_label_values,
            now=clock(),
            always_refuse=is_overflow_series if self.overflow else None,
        )
        self.folder = Folder(config.max_refused_series)
        self._telemetry: SelfMetrics | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._metric_labels: set[str] = set()
        self._folded: dict[str, int] = {}
        self._dropped: dict[str, int] = {}

    async def start(self, host: Host) -> None:
        self._telemetry = host.telemetry
        offenders.register(host, self)
        self._sweeper = asyncio.create_task(self._sweep(), name=f"{self.component_id} sweeper")

    async def shutdown(self) -> None:
        sweeper, self._sweeper = self._sweeper, None
        if sweeper is not None:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
        offenders.unregister(self)

    async def _sweep(self) -> None:
        """Rotate and drain without traffic too, so memory and gauges follow the window."""
        interval = max(0.01, min(1.0, self.config.window / 4))
        while True:
            await asyncio.sleep(0 if self.tracker.draining else interval)
            self._advance(self._clock())
            self.tracker.drain(_DRAIN_CHUNK)

    def _advance(self, now: float) -> None:
        rotation = self.tracker.tick(now)
        if rotation is not Rotation.NONE:
            self.folder.rotate(expire_all=rotation is Rotation.IDLE)

    async def consume(self, batch: Batch) -> None:
        self._advance(self._clock())
        if self.tracker.draining:
            self.tracker.drain(_DRAIN_CHUNK)
        groups: list[MetricPoints] = []
        changed = False
        for group in batch.metrics:
            limited = self._limit(group)
            changed = changed or limited is not group
            if limited is not None:
                groups.append(limited)
        self._flush_telemetry()
        if not changed:
            await self.next_consumer.consume(batch)
        elif groups:
            await self.next_consumer.consume(Batch(groups))

    def _limit(self, group: MetricPoints) -> MetricPoints | None:
        """`group` itself when every point passes, else a new group (None when empty)."""
        series = group.series
        missing = dict.fromkeys(filterfalse(self.tracker.admitted.__contains__, series))
        if not missing:
            return group
        classify = self.tracker.classify
        refused = {s for s in missing if not classify(s)}
        if not refused:
            return group
        keep: list[int] = []
        refused_at: list[int] = []
        for index, one in enumerate(series):
            (refused_at if one in refused else keep).append(index)
        out = group.select(keep)
        name = group.metric.name
        if self.overflow:
            dropped_before = sum(self.folder.dropped.values())
            for target, point in self.folder.fold(group, refused_at):
                assert point.value is not None
                out.append(target, point.value, point.timestamp, point.start)
            folded = len(refused_at) - (sum(self.folder.dropped.values()) - dropped_before)
            self._folded[name] = self._folded.get(name, 0) + folded
        else:
            self._dropped[DROP_REASON] = self._dropped.get(DROP_REASON, 0) + len(refused_at)
        return out if out.series else None

    def metric_label(self, name: str) -> str:
        """`name`, or `_other` once `telemetry_metrics` names have a label of their own."""
        labels = self._metric_labels
        if name in labels:
            return name
        if len(labels) < self.config.telemetry_metrics:
            labels.add(name)
            return name
        return OTHER_METRICS

    def _flush_telemetry(self) -> None:
        refusals, dropped = self.tracker.new_refusals, self.folder.dropped
        if not (refusals or self._folded or self._dropped or dropped):
            return
        telemetry, cid = self._telemetry, self.component_id
        if telemetry is not None:
            for (name, reason), count in refusals.items():
                telemetry.cardinality_refused_series.labels(
                    cid, self.metric_label(name), reason
                ).inc(count)
            for name, count in self._folded.items():
                telemetry.cardinality_folded_points.labels(cid, self.metric_label(name)).inc(count)
            for reasons in (self._dropped, dropped):
                for reason, count in reasons.items():
                    telemetry.processor_dropped.labels(cid, reason).inc(count)
        refusals.clear()
        dropped.clear()
        self._folded.clear()
        self._dropped.clear()


FACTORY = processor_factory(
    "cardinality_limit",
    CardinalityLimitConfig,
    CardinalityLimiter,
    "caps active series per metric, per label value and in total; overflow or drop the rest",
)
