"""The routing processor in a running service: each tenant's data reaches its route's exporters."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metricgate.config import load_config_text
from metricgate.errors import ConfigError, QueueFullError
from metricgate.model import Batch, MetricKind
from metricgate.pipeline.service import Service
from metricgate.tenants import TenantStamp
from tests.support.batches import number_batch
from tests.support.capture import CaptureExporter, InjectReceiver, registry_with_capture
from tests.support.poll import wait_until

CONFIG = """
receivers: {inject: {}}
processors:
  routing:
    default_exporters: [capture/default]
    table:
      - {tenants: [team-a], exporters: [capture/a]}
      - {value: team-b, exporters: [capture/b, capture/default]}
exporters:
  capture/a: {}
  capture/b: {}
  capture/default: {QUEUE}
service:
  pipelines:
    metrics:
      receivers: [inject]
      processors: [routing]
      exporters: [capture/a, capture/b, capture/default]
  telemetry: {metrics: {address: ""}}
"""


@asynccontextmanager
async def running(config: str = CONFIG, queue: str = "{}") -> AsyncIterator[Service]:
    CaptureExporter.instances.clear()
    service = Service(
        load_config_text(config.replace("{QUEUE}", queue), registry_with_capture(), {})
    )
    await service.start()
    try:
        yield service
    finally:
        await service.shutdown(time.monotonic() + 2)


def stamped(tenant: str, name: str = "m", points: int = 3) -> Batch:
    batch = number_batch({f"s{i}": 1.0 for i in range(points)}, name=name, kind=MetricKind.GAUGE)
    return TenantStamp(tenant).apply(batch)[0] if tenant else batch


def tenants_at(exporter: str) -> list[str]:
    return [
        str(group.metric.resource.get("tenant.id") or "")
        for batch in CaptureExporter.instances[exporter].batches
        for group in batch.metrics
    ]


def routed(service: Service, route: str) -> float:
    value = service.telemetry.registry.get_sample_value(
        "metricgate_processor_routed_points_total", {"processor": "routing", "route": route}
    )
    return value or 0.0


async def test_each_tenant_reaches_the_exporters_of_its_route() -> None:
    async with running() as service:
        inject = InjectReceiver.instances["inject"]
        a, b, other, plain = stamped("team-a"), stamped("team-b"), stamped("team-z"), stamped("")
        mixed = Batch([*a.metrics, *b.metrics, *other.metrics, *plain.metrics])
        await inject.push(mixed)
        await wait_until(lambda: len(tenants_at("capture/default")) == 3)
        await wait_until(lambda: len(tenants_at("capture/a")) == 1)
        assert tenants_at("capture/a") == ["team-a"]
        assert tenants_at("capture/b") == ["team-b"]
        assert sorted(tenants_at("capture/default")) == ["", "team-b", "team-z"]
        # The groups are handed on as they came: split per resource, never copied per point.
        (part_a,) = CaptureExporter.instances["capture/a"].batches
        assert part_a.metrics[0] is a.metrics[0]
        assert routed(service, "table[0]") == 3
        assert routed(service, "table[1]") == 3
        assert routed(service, "default") == 6
        # The console's edge from routing to the exporters counts what was routed.
        outgoing = service.telemetry.registry.get_sample_value(
            "metricgate_processor_outgoing_points_total",
            {"processor": "routing", "pipeline": "metrics"},
        )
        assert outgoing == 12


async def test_a_batch_of_one_tenant_is_handed_on_whole() -> None:
    async with running() as _:
        batch = stamped("team-a")
        await InjectReceiver.instances["inject"].push(batch)
        await wait_until(lambda: bool(CaptureExporter.instances["capture/a"].batches))
        assert CaptureExporter.instances["capture/a"].batches == [batch]
        assert not CaptureExporter.instances["capture/default"].batches


async def test_without_a_default_route_unrouted_data_is_dropped_and_counted() -> None:
    config = CONFIG.replace("    default_exporters: [capture/default]\n", "")
    async with running(config) as service:
        await InjectReceiver.instances["inject"].push(stamped("team-z", points=4))
        await InjectReceiver.instances["inject"].push(stamped("team-b"))
        await wait_until(lambda: bool(CaptureExporter.instances["capture/b"].batches))
        dropped = service.telemetry.registry.get_sample_value(
            "metricgate_processor_dropped_points_total",
            {"processor": "routing", "reason": "no_route"},
        )
        assert dropped == 4
        assert tenants_at("capture/default") == ["team-b"]


async def test_a_full_route_answers_retryably_after_the_other_routes_took_theirs() -> None:
    async with running(queue="{sending_queue: {queue_size: 1, num_consumers: 1}}") as service:
        inject = InjectReceiver.instances["inject"]
        default = CaptureExporter.instances["capture/default"]
        default.config = default.config.model_copy(update={"delay_s": 0.5})
        await inject.push(stamped("team-z"))
        await wait_until(lambda: service.exporter_queues["capture/default"].size == 0)
        await inject.push(stamped("team-z"))  # the first is being sent (slowly): now full
        with pytest.raises(QueueFullError):
            await inject.push(Batch([*stamped("team-a").metrics, *stamped("team-z").metrics]))
        await wait_until(lambda: bool(CaptureExporter.instances["capture/a"].batches))


@settings(max_examples=30, deadline=None)
@given(
    tenants=st.lists(st.sampled_from(["team-a", "team-b", "team-c", ""]), min_size=1, max_size=8)
)
def test_every_point_reaches_exactly_its_routes(tenants: list[str]) -> None:
    import asyncio

    async def run() -> None:
        async with running() as _:
            batch = Batch(
                [g for i, t in enumerate(tenants) for g in stamped(t, name=f"m{i}").metrics]
            )
            await InjectReceiver.instances["inject"].push(batch)
            expected = {
                "capture/a": sorted(t for t in tenants if t == "team-a"),
                "capture/b": sorted(t for t in tenants if t == "team-b"),
                "capture/default": sorted(t for t in tenants if t not in ("team-a",)),
            }
            await wait_until(lambda: all(len(tenants_at(e)) == len(v) for e, v in expected.items()))
            assert {e: sorted(tenants_at(e)) for e in expected} == expected

    asyncio.run(run())


def problems(text: str) -> list[str]:
    try:
        load_config_text(text, registry_with_capture(), {})
    except ConfigError as error:
        return list(error.problems)
    raise AssertionError("accepted")


def test_routing_must_come_last_and_name_the_pipelines_exporters() -> None:
    text = (
        CONFIG.replace("{QUEUE}", "{}")
        .replace("processors: [routing]", "processors: [routing, batch]")
        .replace("exporters: [capture/a, capture/b, capture/default]", "exporters: [capture/a]")
    )
    text = text.replace("processors:\n  routing:", "processors:\n  batch: {}\n  routing:")
    found = problems(text)
    assert (
        "service.pipelines.metrics.processors: 'routing' must be the last processor: it hands "
        "data to its exporters itself, so processors after it would see nothing"
    ) in found
    assert (
        "processors.routing.table[1].exporters[0]: exporter 'capture/b' is not one of "
        "service.pipelines.metrics.exporters; list it there too"
    ) in found
    assert any(p.startswith("processors.routing.default_exporters[0]: ") for p in found)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "{attribute_source: context, from_attribute: X-Tenant, table: [{value: a, "
            "exporters: [capture/a]}]}",
            "route with from_attribute: tenant.id",
        ),
        (
            "{table: [{tenants: [a], exporters: [capture/a]}, {value: a, exporters: [capture/a]}]}",
            "tenant 'a' is in table[0] and table[1]",
        ),
        ("{table: [{value: a, tenants: [b], exporters: [capture/a]}]}", "not both"),
        ("{table: []}", "table"),
    ],
)
def test_config_errors_say_what_to_do(body: str, message: str) -> None:
    text = f"""
receivers: {{inject: {{}}}}
processors: {{routing: {body}}}
exporters: {{capture/a: {{}}}}
service: {{pipelines: {{metrics: {{receivers: [inject], processors: [routing],
  exporters: [capture/a]}}}}}}
"""
    found = problems(text)
    assert any(p.startswith("processors.routing") and message in p for p in found), found
