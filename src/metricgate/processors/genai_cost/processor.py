"""The `genai_cost` processor: price LLM token counts and add `agent.cost` to the same batch.

For each input token series (see `routes` for which metrics, attributes and models) it turns the
points into token *increments*: a delta point is its own increment; a cumulative point is the
difference to the series' previous point, and the whole value for the first point of a series, a
new start timestamp or a value that went down (a counter reset: the counter restarted from 0;
histograms: their sum or their count).
Points whose timestamp is not after the previous one (retries, reordering) add nothing. (The rule
is `metricgate.model.delta.Deltas`: first points kept, a reset is a restart, no repeats, a zero
start time is unknown.) The increment x price is added to a running total per output series
(agent_id, agent_type, provider on the input's resource), and every output series touched by a
batch is appended to it as one cumulative monotonic `agent.cost` point (unit `{USD}`, Prometheus
`agent_cost_total`).

`source: auto` reads both token metrics, but once a resource has sent the catalog counter its
gen_ai histogram is ignored (instrumentation that records both describes the same calls). Points
of one batch are handled catalog first, so both arriving together never count twice. With
`skip_resources_with_cost` (default) a resource that records `agent.cost` itself is not priced.

Invariant: the input batch passes through unchanged (the same object when no cost is produced);
each output total only ever grows while its state lives, and the states of input series that feed
an output are forgotten together with it, so a returning input is never counted twice.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from metricgate.model import (
    FLAG_NO_RECORDED_VALUE,
    Batch,
    HistogramPoint,
    Metric,
    MetricPoints,
    Resource,
    Series,
    Temporality,
)
from metricgate.model.delta import Deltas, FirstPoint, Last, number_increase
from metricgate.pipeline.component import Consumer, Processor
from metricgate.pipeline.host import Host
from metricgate.pipeline.registry import processor_factory
from metricgate.processors.genai_cost.config import GenAICostConfig
from metricgate.processors.genai_cost.routes import Route, Router, SourceKind, Unpriced, source_of
from metricgate.processors.genai_cost.unknown import UnknownModels

_CACHE_LIMIT = 1 << 20
_UNROUTED = Unpriced("", "")
"""Route-cache miss marker (a route is never this object)."""


@dataclass(slots=True, eq=False)
class _Output:
    series: Series
    start: int
    total: float
    timestamp: int
    seen: float
    alive: bool = True


class _Input(Last[float]):
    """Last cumulative token count (histograms: their sum), where its cost goes, and for
    histograms their count (`points`): a count that went down is a reset too."""

    __slots__ = ("output", "points")

    def __init__(self, output: _Output, start: int, time: int, count: float, points: int) -> None:
        self.start = start  # Last's slots set here: one call less per new input
        self.time = time
        self.value = count
        self.output = output
        self.points = points


class GenAICostProcessor(Processor):
    """Adds `agent.cost` computed from token metrics (see module docstring)."""

    def __init__(
        self,
        component_id: str,
        config: GenAICostConfig,
        next_consumer: Consumer,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(component_id, next_consumer)
        self.config = config
        self.clock = clock
        self.router = Router(config.price_table(), config.default_models)
        self.unknown = UnknownModels(component_id, config.unknown_model_log_interval, clock)
        self.outputs: dict[Series, _Output] = {}
        self.inputs: dict[Series, _Input] = {}
        self._deltas = Deltas(
            number_increase, FirstPoint.KEEP, repeats=False, zero_start_unknown=True
        )
        self.catalog_resources: dict[Resource, float] = {}
        """Resources that sent the catalog counter (`source: auto`), with when they last did."""
        self.costed_resources: dict[Resource, float] = {}
        """Resources that record `agent.cost` themselves (`skip_resources_with_cost`)."""
        self._routes: dict[Series, Route | Unpriced | None] = {}
        self._sources: dict[Metric, SourceKind | None] = {}
        self._last_sweep = clock()

    async def start(self, host: Host) -> None:
        self.unknown.bind(host)
        self.observe(
            host.telemetry.processor_active_streams,
            lambda: {(self.component_id,): float(len(self.outputs) + len(self.inputs))},
        )

    async def consume(self, batch: Batch) -> None:
        now = self.clock()
        catalog: list[MetricPoints] = []
        genai: list[MetricPoints] = []
        wanted = self.config.source
        sources = self._sources
        for group in batch.metrics:
            if group.metric in sources:
                kind = sources[group.metric]
            else:
                if len(sources) >= _CACHE_LIMIT:
                    sources.clear()
                kind = sources[group.metric] = source_of(group.metric)
            if kind is SourceKind.CATALOG and wanted != "genai":
                catalog.append(group)
                if wanted == "auto":
                    self.catalog_resources[group.metric.resource] = now
            elif kind is SourceKind.GENAI and wanted != "catalog":
                genai.append(group)
            elif kind is SourceKind.COST and self.config.skip_resources_with_cost:
                self.costed_resources[group.metric.resource] = now
        if not catalog and not genai:
            await self.next_consumer.consume(batch)
            return
        touched: dict[_Output, None] = {}
        unpriced: Counter[tuple[str, str]] = Counter()
        costed = self.costed_resources
        for group in catalog:
            if group.metric.resource not in costed:
                self._price(group, SourceKind.CATALOG, now, touched, unpriced)
        for group in genai:
            resource = group.metric.resource
            if resource in costed or (wanted == "auto" and resource in self.catalog_resources):
                continue
            self._price(group, SourceKind.GENAI, now, touched, unpriced)
        if unpriced:
            self.unknown.add(unpriced)
        staleness = self.config.max_staleness
        if staleness > 0 and now - self._last_sweep >= staleness / 4:
            self.sweep(now)
        if not touched:
            await self.next_consumer.consume(batch)
            return
        await self.next_consumer.consume(Batch([*batch.metrics, *_cost_groups(touched)]))

    def _price(
        self,
        group: MetricPoints,
        kind: SourceKind,
        now: float,
        touched: dict[_Output, None],
        unpriced: Counter[tuple[str, str]],
    ) -> None:
        cumulative = group.metric.temporality is Temporality.CUMULATIVE
        routes, inputs, deltas = self._routes, self.inputs, self._deltas
        values, timestamps, starts, flags = (
            group.values,
            group.timestamps,
            group.start_timestamps,
            group.flags,
        )
        for i, series in enumerate(group.series):
            route = routes.get(series, _UNROUTED)
            if route is _UNROUTED:
                route = self._route(series, kind)
            if route is None:
                continue
            if isinstance(route, Unpriced):
                unpriced[(route.provider, route.model)] += 1
                continue
            if flags[i] & FLAG_NO_RECORDED_VALUE:
                inputs.pop(series, None)
                continue
            value = values[i]
            if isinstance(value, HistogramPoint):
                if value.sum is None:
                    continue
                count, points = value.sum, value.count
            elif isinstance(value, float | int):
                count, points = float(value), 0
            else:
                continue
            if not math.isfinite(count) or count < 0:
                continue
            timestamp, start = timestamps[i], starts[i]
            output = self._output(route.output, start or timestamp, now)
            if cumulative:
                state = inputs.get(series)
                if state is None or not state.output.alive:
                    inputs[series] = _Input(output, start, timestamp, count, points)
                    found = deltas.begin(start, timestamp, count)
                else:
                    found = deltas.advance(state, start, timestamp, count)
                    if found is not None:
                        if points < state.points:  # a histogram's count went down: a reset
                            found = count
                        state.points = points
                        # unlike cumulative_to_delta, each accepted point's start is the next
                        # baseline's, even an unknown (0) one: kept as it was
                        state.start = start
                tokens = 0.0 if found is None else found  # None: a retry or reordering
            else:
                tokens = count
            if tokens > 0:
                output.total += tokens * route.per_token
            output.timestamp = max(output.timestamp, timestamp)
            output.seen = now
            touched[output] = None

    def _output(self, series: Series, start: int, now: float) -> _Output:
        output = self.outputs.get(series)
        if output is None:
            output = self.outputs[series] = _Output(series, start, 0.0, start, now)
        return output

    def _route(self, series: Series, kind: SourceKind) -> Route | Unpriced | None:
        if len(self._routes) >= _CACHE_LIMIT:
            self._routes.clear()
        route = self._routes[series] = self.router.route(series, kind)
        return route

    def sweep(self, now: float | None = None) -> int:
        """Forget output series idle for `max_staleness`, with their inputs; returns how many."""
        now = self.clock() if now is None else now
        self._last_sweep = now
        if self.config.max_staleness <= 0:
            return 0
        cutoff = now - self.config.max_staleness
        stale = [series for series, output in self.outputs.items() if output.seen < cutoff]
        for series in stale:
            self.outputs.pop(series).alive = False
        if stale:
            self.inputs = {s: state for s, state in self.inputs.items() if state.output.alive}
        self.catalog_resources = _recent(self.catalog_resources, cutoff)
        self.costed_resources = _recent(self.costed_resources, cutoff)
        return len(stale)


def _recent(resources: dict[Resource, float], cutoff: float) -> dict[Resource, float]:
    return {resource: seen for resource, seen in resources.items() if seen >= cutoff}


def _cost_groups(touched: dict[_Output, None]) -> list[MetricPoints]:
    groups: dict[Metric, MetricPoints] = {}
    for output in touched:
        metric = output.series.metric
        group = groups.get(metric)
        if group is None:
            group = groups[metric] = MetricPoints(metric)
        group.append(output.series, output.total, output.timestamp, output.start)
    return list(groups.values())


FACTORY = processor_factory(
    "genai_cost",
    GenAICostConfig,
    GenAICostProcessor,
    "prices LLM token metrics and adds agent.cost (USD)",
)
