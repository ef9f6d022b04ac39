"""The `resource` processor: insert, update, upsert, delete, hash, extract or convert resource
attributes (the Collector's resource processor; actions in `metricgate.processing.actions`).

A resource is part of every Metric's identity, so a changed resource means new interned Resource,
Metric and Series objects. Each is computed once and cached (per input Resource, Metric, Series):
in steady state a group costs one lookup and a point one more. When two input metrics end up
with the same descriptor (the attribute that told their resources apart was deleted), their
groups are merged, keeping one group per metric in the batch.

Invariant: input groups are never changed; groups whose resource stays the same are passed on as
the same objects, and a batch with no change is forwarded as is.
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import model_validator

from metricgate.config.types import ComponentConfig
from metricgate.model import INTERNER, Batch, Metric, MetricPoints, Resource, Series
from metricgate.model.grouping import merge_groups
from metricgate.pipeline.component import Consumer, Processor
from metricgate.pipeline.registry import processor_factory
from metricgate.processing.actions import Actions, AttributeAction

_CACHE_LIMIT = 1 << 20
"""Caches are cleared past this many entries (they refill from the actions)."""

_K = TypeVar("_K")
_V = TypeVar("_V")


class ResourceConfig(ComponentConfig):
    """`processors.resource`."""

    actions: list[AttributeAction]
    """Applied in order to each resource's attributes."""

    @model_validator(mode="after")
    def _check(self) -> ResourceConfig:
        if not self.actions:
            raise ValueError("expected at least one entry in actions")
        return self


class ResourceProcessor(Processor):
    """Rewrites resource attributes (see module docstring)."""

    def __init__(self, component_id: str, config: ResourceConfig, next_consumer: Consumer) -> None:
        super().__init__(component_id, next_consumer)
        self._actions = Actions(config.actions)
        self._resources: dict[Resource, Resource] = {}
        self._metrics: dict[Metric, Metric] = {}
        self._series: dict[Series, Series] = {}

    async def consume(self, batch: Batch) -> None:
        out: list[MetricPoints] = []
        changed = False
        for group in batch.metrics:
            metric = self._metrics.get(group.metric) or self._rewrite_metric(group.metric)
            if metric is group.metric:
                out.append(group)
                continue
            changed = True
            get = self._series.get
            mapped = [get(s) or self._rewrite_series(s, metric) for s in group.series]
            out.append(
                MetricPoints(
                    metric,
                    mapped,
                    group.values,
                    group.timestamps,
                    group.start_timestamps,
                    group.flags,
                    group.exemplars,
                )
            )
        await self.next_consumer.consume(Batch(merge_groups(out)) if changed else batch)

    def _rewrite_resource(self, resource: Resource) -> Resource:
        found = self._resources.get(resource)
        if found is None:
            attributes = self._actions.apply(resource.attributes)
            found = (
                resource
                if attributes is resource.attributes
                else INTERNER.intern_resource(attributes, resource.schema_url)
            )
            _remember(self._resources, resource, found)
        return found

    def _rewrite_metric(self, metric: Metric) -> Metric:
        resource = self._rewrite_resource(metric.resource)
        result = metric
        if resource is not metric.resource:
            result = INTERNER.intern_metric_like(metric, resource=resource)
        _remember(self._metrics, metric, result)
        return result

    def _rewrite_series(self, series: Series, metric: Metric) -> Series:
        result = INTERNER.intern_series(metric, series.attributes)
        _remember(self._series, series, result)
        return result


def _remember(cache: dict[_K, _V], key: _K, value: _V) -> None:
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    cache[key] = value


FACTORY = processor_factory(
    "resource",
    ResourceConfig,
    ResourceProcessor,
    "rewrites resource attributes",
    stateless=True,
)
