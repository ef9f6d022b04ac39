"""cardinality_limit keyed by tenant: each tenant's `max_series` is its own budget.

The property: whatever tenant A sends (an explosion of new series, interleaved with B's traffic
in any order, in batches that mix both), B's admitted series and everything B's data turns into
(passed points, overflow points) are exactly what they are when B is alone.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
from hypothesis import given, settings
from hypothesis import strategies as st

from metricgate.config import load_config_text
from metricgate.config.tenants import TenantsConfig
from metricgate.model import INTERNER, Batch, MetricPoints, Temporality, sorted_attributes
from metricgate.pipeline.host import Host
from metricgate.pipeline.service import Service
from metricgate.processors.cardinality_limit import CardinalityLimitConfig, CardinalityLimiter
from metricgate.telemetry.metrics import SelfMetrics
from metricgate.tenants import TenantStamp
from tests.support.batches import metric
from tests.support.capture import InjectReceiver, registry_with_capture
from tests.support.ports import free_port
from tests.support.sink import Sink

METRICS = [metric(f"calls_{i}", temporality=Temporality.DELTA) for i in range(2)]
STAMPS = {tenant: TenantStamp(tenant) for tenant in ("team-a", "team-b")}
CONFIG = {"max_series": 6, "max_series_per_metric": 4, "on_limit": "overflow"}
TENANTS = TenantsConfig.model_validate({"team-a": {"max_series": 3}, "*": {"max_series": 5}})


def point(tenant: str, metric_index: int, user: int) -> MetricPoints:
    """One point of `tenant`'s series (metric, user), stamped as an authenticated listener does."""
    m = METRICS[metric_index]
    group = MetricPoints(m)
    group.append(INTERNER.intern_series(m, sorted_attributes({"user": str(user)})), 1.0, 1)
    stamped, _ = STAMPS[tenant].apply(Batch([group]))
    return stamped.metrics[0]


async def run(plan: list[list[MetricPoints]], config: dict[str, Any] = CONFIG) -> Any:
    """Feed the batches of `plan`; return B's admitted series and B's output, in order."""
    sink = Sink()
    limiter = CardinalityLimiter(
        "cardinality_limit",
        CardinalityLimitConfig.model_validate(config),
        sink,
        clock=lambda: 0.0,
    )
    await limiter.start(Host(SelfMetrics(), tenants=TENANTS))
    try:
        for groups in plan:
            await limiter.consume(Batch(groups))
    finally:
        await limiter.shutdown()
    budget = limiter.budgets.tenants.get("team-b")
    admitted = set() if budget is None else set(budget.tracker.admitted)
    output = [
        (series, group.values[i])
        for batch in sink.batches
        for group in batch.metrics
        if group.metric.resource.get("tenant.id") == "team-b"
        for i, series in enumerate(group.series)
    ]
    return admitted, output


b_traffic = st.lists(st.tuples(st.integers(0, 1), st.integers(0, 9)), min_size=1, max_size=30)
a_traffic = st.lists(st.tuples(st.integers(0, 1), st.integers(0, 200)), max_size=80)


@settings(max_examples=150, deadline=None)
@given(b=b_traffic, a=a_traffic, data=st.data())
def test_b_admits_the_same_series_whatever_a_sends(
    b: list[tuple[int, int]], a: list[tuple[int, int]], data: st.DataObject
) -> None:
    b_points = [point("team-b", m, u) for m, u in b]
    a_points = [point("team-a", m, u) for m, u in a]
    # A random interleaving that keeps each tenant's own order, cut into random batches.
    order = data.draw(st.permutations([0] * len(a_points) + [1] * len(b_points)))
    queues = [list(a_points), list(b_points)]
    merged = [queues[side].pop(0) for side in order]
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(merged) - 1)), max_size=10)))
    plan = [merged[i:j] for i, j in zip([0, *cuts], [*cuts, len(merged)], strict=False)]
    alone = asyncio.run(run([[p] for p in b_points]))
    together = asyncio.run(run([batch for batch in plan if batch]))
    assert together == alone


def test_one_shared_budget_is_what_the_property_rules_out() -> None:
    """Control: without tenant budgets, A's explosion takes the slots B would have had."""
    a_first = [[point("team-a", 0, u)] for u in range(10)] + [[point("team-b", 0, 1)]]
    shared = {**CONFIG, "tenant_attribute": ""}
    _, alone = asyncio.run(run([[point("team-b", 0, 1)]], shared))
    _, together = asyncio.run(run(a_first, shared))
    assert alone != together
    _, per_tenant = asyncio.run(run(a_first))
    assert per_tenant == alone


async def test_overflow_series_keep_their_tenant() -> None:
    sink = Sink()
    limiter = CardinalityLimiter(
        "cardinality_limit", CardinalityLimitConfig.model_validate(CONFIG), sink
    )
    await limiter.start(Host(SelfMetrics(), tenants=TENANTS))
    try:
        await limiter.consume(Batch([point("team-a", 0, u) for u in range(6)]))
    finally:
        await limiter.shutdown()
    overflow = [s for b in sink.batches for g in b.metrics for s in g.series if len(s.attributes)]
    assert (("otel.metric.overflow", True), ("tenant", "team-a")) in {
        s.attributes for s in overflow
    }


async def test_unlisted_tenants_beyond_max_tenants_share_one_budget() -> None:
    limiter = CardinalityLimiter(
        "cardinality_limit",
        CardinalityLimitConfig.model_validate({**CONFIG, "max_tenants": 2}),
        Sink(),
        clock=lambda: 0.0,
    )
    await limiter.start(Host(SelfMetrics()))
    try:
        for tenant in ("t1", "t2", "t3", "t4"):
            STAMPS.setdefault(tenant, TenantStamp(tenant))
            await limiter.consume(Batch([point(tenant, 0, 1)]))
        assert sorted(limiter.budgets.tenants) == ["_other", "t1", "t2"]
        assert limiter.budgets.tenants["_other"].tracker.admitted_total == 2
    finally:
        await limiter.shutdown()


SERVICE = """
receivers: {{inject: {{}}}}
processors:
  cardinality_limit: {{max_series: 100, max_series_per_metric: 50}}
exporters: {{capture: {{}}}}
tenants:
  team-a: {{max_series: 3}}
  "*": {{max_series: 20}}
service:
  telemetry: {{metrics: {{address: "127.0.0.1:{port}"}}, logs: {{level: warning}}}}
  pipelines:
    metrics: {{receivers: [inject], processors: [cardinality_limit], exporters: [capture]}}
"""


async def test_budgets_show_per_tenant_in_telemetry_and_on_the_page() -> None:
    port = free_port()
    service = Service(load_config_text(SERVICE.format(port=port), registry_with_capture(), {}))
    await service.start()
    try:
        inject = InjectReceiver.instances["inject"]
        await inject.push(Batch([point("team-a", 0, u) for u in range(40)]))
        await inject.push(Batch([point("team-b", 1, u) for u in range(7)]))
        registry = service.telemetry.registry

        def sample(name: str, tenant: str) -> float | None:
            labels = {"processor": "cardinality_limit", "tenant": tenant}
            return registry.get_sample_value(name, labels)

        assert sample("metricgate_cardinality_tenant_series", "team-a") == 3
        assert sample("metricgate_cardinality_tenant_series", "team-b") == 7
        assert sample("metricgate_cardinality_tenant_limit", "team-a") == 3
        assert sample("metricgate_cardinality_tenant_limit", "team-b") == 20
        assert sample("metricgate_cardinality_tenant_refused_points_total", "team-a") == 37
        assert sample("metricgate_cardinality_tenant_refused_points_total", "team-b") is None
        base = f"http://127.0.0.1:{port}/debug/cardinality"
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}?tenant=team-b") as response:
                body = await response.json()
            async with http.get(base, params={"format": "text"}) as response:
                text = await response.text()
        (report,) = body["limiters"]
        assert report["tenant"] == "team-b"
        assert (report["active_series"], report["limits"]["max_series"]) == (7, 20)
        assert "cardinality_limit tenant team-a: 3 active series, 37 refused" in text
        assert "cardinality_limit tenant team-b: 7 active series" in text
    finally:
        await service.shutdown(time.monotonic() + 2)
