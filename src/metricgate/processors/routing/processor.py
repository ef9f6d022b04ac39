"""The `routing` processor: each tenant's data to the exporters of its route.

Per batch, each metric group (one resource) is looked up once: its resource's `from_attribute`
value -> the route naming it, else the default route; the answer is remembered per resource
(bounded), so a batch costs one dict lookup per group, never work per point. Each route's groups
go to its exporters' queues as one batch, through the same fan-out as a pipeline's end
(`ExporterFanOut`: every queue with room takes it; a full one answers the client with a
retryable error after the others took theirs). The processor never hands batches to its next
consumer: routes replace the pipeline's exporter list, as with the Collector's routing processor
(what it routed is still counted on the pipeline's `PointMeter`, for the console's graph).

Invariant: a point goes to the exporters of exactly one route (or is dropped, counted, when no
route takes it and there is no default); batches are never mutated (groups are shared).
"""

from __future__ import annotations

from metricgate.errors import ConsumeError
from metricgate.model import Batch, MetricPoints, Resource
from metricgate.pipeline.component import Consumer, Processor
from metricgate.pipeline.fanout import ExporterFanOut
from metricgate.pipeline.host import Host
from metricgate.pipeline.meter import PointMeter
from metricgate.pipeline.registry import processor_factory
from metricgate.processors.routing.config import RoutingConfig
from metricgate.telemetry.metrics import Counter, SelfMetrics

NO_ROUTE = "no_route"
"""`metricgate_processor_dropped_points` reason: no route and no default exporters."""
_MAX_RESOURCES = 100_000


class RoutingProcessor(Processor):
    """Sends each resource's data to the exporters of its route (see module docstring)."""

    holds_exporters = True

    def __init__(self, component_id: str, config: RoutingConfig, next_consumer: Consumer) -> None:
        super().__init__(component_id, next_consumer)
        self.config = config
        self.names = [f"table[{i}]" for i in range(len(config.table))] + ["default"]
        self._exporter_ids = [route.exporters for route in config.table]
        self._exporter_ids.append(config.default_exporters)
        self._route_of = {
            value: index for index, route in enumerate(config.table) for value in route.tenants
        }
        self._default = len(config.table)
        self._routes: list[ExporterFanOut | None] = []
        self._by_resource: dict[Resource, int] = {}
        self._telemetry: SelfMetrics | None = None
        self._routed: list[Counter] = []
        """Per route (as `names`), its `metricgate_processor_routed_points` child."""

    async def start(self, host: Host) -> None:
        telemetry = self._telemetry = host.telemetry
        routed = telemetry.counter(
            "metricgate_processor_routed_points",
            "Data points a routing processor handed to a route's exporters (route: table[i] or "
            "default).",
            ["processor", "route"],
        )
        self._routed = [routed.labels(self.component_id, name) for name in self.names]
        self._routes = [
            ExporterFanOut([host.exporters[e] for e in ids]) if ids else None
            for ids in self._exporter_ids
        ]

    def route(self, resource: Resource) -> int:
        """The index of `resource`'s route in `names` (the last one is the default)."""
        known = self._by_resource
        try:
            return known[resource]
        except KeyError:
            pass
        value = resource.get(self.config.from_attribute)
        index = (
            self._route_of.get(value, self._default) if isinstance(value, str) else self._default
        )
        if len(known) >= _MAX_RESOURCES:
            known.clear()
        known[resource] = index
        return index

    async def consume(self, batch: Batch) -> None:
        route = self.route
        parts: dict[int, list[MetricPoints]] = {}
        for group in batch.metrics:
            index = route(group.metric.resource)
            found = parts.get(index)
            if found is None:
                parts[index] = [group]
            else:
                found.append(group)
        refused: ConsumeError | None = None
        routed = 0
        for index, groups in parts.items():
            part = batch if len(parts) == 1 else Batch(groups)
            try:
                routed += await self._send(index, part)
            except ConsumeError as exc:
                refused = refused or exc
        meter = self.next_consumer
        if routed and isinstance(meter, PointMeter):
            meter.count(routed)
        if refused is not None:
            raise refused

    async def _send(self, index: int, part: Batch) -> int:
        """Hand `part` to route `index`; the points routed (0 when dropped: no route)."""
        points = part.point_count()
        fan_out = self._routes[index]
        telemetry = self._telemetry
        if fan_out is None:
            if telemetry is not None and points:
                telemetry.processor_dropped.labels(self.component_id, NO_ROUTE).inc(points)
            return 0
        if self._routed and points:
            self._routed[index].inc(points)
        await fan_out.consume(part)
        return points


FACTORY = processor_factory(
    "routing",
    RoutingConfig,
    RoutingProcessor,
    "sends each tenant's data (resource attribute tenant.id) to the exporters of its route",
)
