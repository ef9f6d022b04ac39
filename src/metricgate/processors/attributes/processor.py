"""The `attributes` processor: insert, update, upsert, delete, hash, extract or convert data point
attributes (the Collector's attributes processor; actions in `metricgate.processing.actions`).

`include` / `exclude` (the `filter` processor's matchers) limit which points the actions touch.
The result is computed once per input Series and cached, so in steady state a point costs one
dict lookup. Two input series may map onto one output series (after a `delete`, say); their points
then travel side by side, as in the Collector.

Invariant: input groups are never changed. A group whose series all stay the same is passed on as
the same object; otherwise a new group shares the input's value and timestamp lists (read-only)
with a new series list.
"""

from __future__ import annotations

from pydantic import model_validator

from metricgate.config.types import ComponentConfig
from metricgate.model import INTERNER, Batch, MetricPoints, Series
from metricgate.pipeline.component import Consumer, Processor
from metricgate.pipeline.registry import processor_factory
from metricgate.processing.actions import Actions, AttributeAction
from metricgate.processing.matching import MatchProperties, MetricMatcher

_CACHE_LIMIT = 1 << 20
"""The per-series cache is cleared past this many entries (it refills from the actions)."""


class AttributesConfig(ComponentConfig):
    """`processors.attributes`."""

    actions: list[AttributeAction]
    """Applied in order to each data point's attributes."""
    include: MatchProperties | None = None
    """Act only on matching points (default: all)."""
    exclude: MatchProperties | None = None
    """Leave matching points alone (applied after `include`)."""

    @model_validator(mode="after")
    def _check(self) -> AttributesConfig:
        if not self.actions:
            raise ValueError("expected at least one entry in actions")
        return self


class AttributesProcessor(Processor):
    """Rewrites data point attributes (see module docstring)."""

    def __init__(
        self, component_id: str, config: AttributesConfig, next_consumer: Consumer
    ) -> None:
        super().__init__(component_id, next_consumer)
        self._actions = Actions(config.actions)
        self._include = MetricMatcher(config.include) if config.include else None
        self._exclude = MetricMatcher(config.exclude) if config.exclude else None
        self._series: dict[Series, Series] = {}

    async def consume(self, batch: Batch) -> None:
        out: list[MetricPoints] = []
        changed = False
        get = self._series.get
        rewrite = self._rewrite
        for group in batch.metrics:
            series = group.series
            mapped = [get(s) or rewrite(s) for s in series]
            if mapped == series:
                out.append(group)
                continue
            changed = True
            out.append(
                MetricPoints(
                    group.metric,
                    mapped,
                    group.values,
                    group.timestamps,
                    group.start_timestamps,
                    group.flags,
                    group.exemplars,
                )
            )
        await self.next_consumer.consume(Batch(out) if changed else batch)

    def _rewrite(self, series: Series) -> Series:
        result = series
        if (self._include is None or self._include.matches(series)) and not (
            self._exclude is not None and self._exclude.matches(series)
        ):
            attributes = self._actions.apply(series.attributes)
            if attributes is not series.attributes:
                result = INTERNER.intern_series(series.metric, attributes)
        if len(self._series) >= _CACHE_LIMIT:
            self._series.clear()
        self._series[series] = result
        return result


FACTORY = processor_factory(
    "attributes",
    AttributesConfig,
    AttributesProcessor,
    "rewrites data point attributes",
    stateless=True,
)
