"""Load-balancing exporter test support: the registry with `loadbalancing`, downstream gateways
and a batch of several services."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from metricgate.exporters.loadbalancing import (
    FACTORY,
)
from metricgate.model import INTERNER, Batch, MetricPoints
from metricgate.pipeline.registry import Kind, Registry
from tests.receivers.otlp_gateway import Gateway, running
from tests.support.batches import metric
from tests.support.capture import registry_with_capture

T0 = 1_700_000_000_000_000_000


def registry() -> Registry:
    """The test registry, with `loadbalancing` whether or not `components.py` lists it yet."""
    found = registry_with_capture()
    if found.get(Kind.EXPORTER, "loadbalancing") is None:
        found.register(FACTORY)
    return found


def services_batch(timestamp: int = T0, services: int = 3, per_metric: int = 100) -> Batch:
    """Two metrics per service, `per_metric` series each, value = series number."""
    groups = []
    for s in range(services):
        for name in ("requests", "tokens"):
            m = metric(name, service=f"svc-{s}")
            group = MetricPoints(m)
            for i in range(per_metric):
                group.append(INTERNER.intern_series(m, (("k", str(i)),)), float(i), timestamp)
            groups.append(group)
    return Batch(groups)


@asynccontextmanager
async def downstreams(count: int = 3) -> AsyncIterator[list[Gateway]]:
    async with AsyncExitStack() as stack:
        yield [await stack.enter_async_context(running()) for _ in range(count)]
