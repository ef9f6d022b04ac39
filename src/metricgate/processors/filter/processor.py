"""The `filter` processor: keep or drop data points by metric name, type and attributes.

`include` (when given) keeps only the points it matches; `exclude` then drops the points it
matches. Name, type and resource conditions are decided once per Metric; data point attribute
conditions once per Series. In steady state a group costs one dict lookup, plus one per point only
when an attribute condition is configured. Dropped points are counted as
`metricgate_processor_dropped_points_total{reason="filtered"}`.

Invariant: the input batch is never changed; unchanged groups are passed on as the same objects,
and a batch with nothing dropped is forwarded as is. An emptied batch is not forwarded at all.
"""

from __future__ import annotations

from metricgate.config.types import ComponentConfig
from metricgate.model import Batch, Metric, MetricPoints, Series
from metricgate.pipeline.component import Consumer, Processor
from metricgate.pipeline.host import Host
from metricgate.pipeline.registry import processor_factory
from metricgate.processing.drops import DropCounter
from metricgate.processing.matching import MatchProperties, MetricMatcher

_DROP, _KEEP, _PER_SERIES = 0, 1, 2
_CACHE_LIMIT = 1 << 20
"""Verdict caches are cleared past this many entries (they refill from the matchers)."""


class FilterConfig(ComponentConfig):
    """`processors.filter`: neither key set keeps everything."""

    include: MatchProperties | None = None
    """Keep only matching points."""
    exclude: MatchProperties | None = None
    """Drop matching points (applied after `include`)."""


class FilterProcessor(Processor):
    """Drops the points `include`/`exclude` reject (see module docstring)."""

    def __init__(self, component_id: str, config: FilterConfig, next_consumer: Consumer) -> None:
        super().__init__(component_id, next_consumer)
        self._include = MetricMatcher(config.include) if config.include else None
        self._exclude = MetricMatcher(config.exclude) if config.exclude else None
        self._metric_verdicts: dict[Metric, int] = {}
        self._series_verdicts: dict[Series, bool] = {}
        self.dropped = DropCounter(component_id)

    async def start(self, host: Host) -> None:
        self.dropped.bind(host)

    async def consume(self, batch: Batch) -> None:
        out: list[MetricPoints] = []
        dropped = 0
        verdicts = self._metric_verdicts
        for group in batch.metrics:
            verdict = verdicts.get(group.metric)
            if verdict is None:
                verdict = self._metric_verdict(group.metric)
            if verdict == _KEEP:
                out.append(group)
            elif verdict == _DROP:
                dropped += len(group.series)
            else:
                kept = self._filter_series(group)
                dropped += len(group.series) - len(kept)
                if len(kept) == len(group.series):
                    out.append(group)
                elif kept:
                    out.append(group.select(kept))
        if not dropped:
            await self.next_consumer.consume(batch)
            return
        self.dropped.add("filtered", dropped)
        if out:
            await self.next_consumer.consume(Batch(out))

    def _filter_series(self, group: MetricPoints) -> list[int]:
        verdicts = self._series_verdicts
        get = verdicts.get
        kept = []
        for i, series in enumerate(group.series):
            keep = get(series)
            if keep is None:
                keep = self._series_verdict(series)
            if keep:
                kept.append(i)
        return kept

    def _metric_verdict(self, metric: Metric) -> int:
        include, exclude = self._include, self._exclude
        if include is not None and not include.matches_metric(metric):
            verdict = _DROP
        elif include is not None and include.has_attributes:
            verdict = _PER_SERIES
        elif exclude is not None and exclude.matches_metric(metric):
            verdict = _PER_SERIES if exclude.has_attributes else _DROP
        else:
            verdict = _KEEP
        if len(self._metric_verdicts) >= _CACHE_LIMIT:
            self._metric_verdicts.clear()
        self._metric_verdicts[metric] = verdict
        return verdict

    def _series_verdict(self, series: Series) -> bool:
        include, exclude = self._include, self._exclude
        keep = (include is None or include.matches(series)) and not (
            exclude is not None and exclude.matches(series)
        )
        if len(self._series_verdicts) >= _CACHE_LIMIT:
            self._series_verdicts.clear()
        self._series_verdicts[series] = keep
        return keep


FACTORY = processor_factory(
    "filter",
    FilterConfig,
    FilterProcessor,
    "keeps or drops points by name, type, attributes",
    stateless=True,
)
