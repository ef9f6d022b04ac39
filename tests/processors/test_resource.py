"""The resource processor: resource attribute actions, re-interned identities, merged groups."""

from __future__ import annotations

from typing import Any

import pytest

from metricgate.config import load_config_text
from metricgate.model import INTERNER, Batch, MetricKind, MetricPoints, sorted_attributes
from metricgate.pipeline.service import Service
from metricgate.processors.resource import ResourceConfig, ResourceProcessor
from tests.support.capture import (
    CaptureExporter,
    InjectReceiver,
    processor_config_problems,
    registry_with_capture,
)
from tests.support.poll import wait_until
from tests.support.sink import Sink

T0 = 1_700_000_000_000_000_000


def group(resource: dict[str, Any], keys: list[str], value: float = 1.0) -> MetricPoints:
    r = INTERNER.intern_resource(sorted_attributes(resource))
    scope = INTERNER.intern_scope("lib", "1")
    m = INTERNER.intern_metric(r, scope, "requests", "1", MetricKind.GAUGE, description="d")
    out = MetricPoints(m)
    for i, key in enumerate(keys):
        out.append(INTERNER.intern_series(m, (("k", key),)), value, T0 + i, flags=i % 2)
    return out


def processor(actions: list[dict[str, Any]]) -> tuple[ResourceProcessor, Sink]:
    sink = Sink()
    config = ResourceConfig.model_validate({"actions": actions})
    return ResourceProcessor("resource", config, sink), sink


async def test_rewrites_resource_and_reinterns_metric_and_series() -> None:
    proc, sink = processor([{"key": "deployment.environment", "action": "upsert", "value": "prod"}])
    g = group({"service.name": "api"}, ["a", "b"])
    await proc.consume(Batch([g]))
    (out,) = sink.batches[0].metrics
    expected = INTERNER.intern_resource(
        (("deployment.environment", "prod"), ("service.name", "api"))
    )
    assert out.metric.resource is expected
    m = out.metric
    assert (m.scope, m.name, m.unit, m.kind, m.description) == (
        g.metric.scope,
        "requests",
        "1",
        MetricKind.GAUGE,
        "d",
    )
    assert all(s.metric is m for s in out.series)
    assert [s.attributes for s in out.series] == [(("k", "a"),), (("k", "b"),)]
    assert out.values == g.values and out.timestamps == g.timestamps and out.flags == [0, 1]
    assert g.metric.resource.attributes == (("service.name", "api"),)  # input untouched


async def test_second_pass_returns_identical_objects_from_the_caches() -> None:
    proc, sink = processor([{"key": "host.name", "action": "delete"}])
    batch = Batch([group({"service.name": "api", "host.name": "h1"}, ["a"])])
    await proc.consume(batch)
    await proc.consume(batch)
    first, second = (b.metrics[0] for b in sink.batches)
    assert first.metric is second.metric
    assert first.series[0] is second.series[0]
    assert (len(proc._resources), len(proc._metrics), len(proc._series)) == (1, 1, 1)


async def test_metrics_that_become_equal_are_merged_into_one_group() -> None:
    proc, sink = processor([{"action": "delete", "pattern": "^host\\."}])
    a = group({"service.name": "api", "host.name": "h1"}, ["a"], 1.0)
    b = group({"service.name": "api", "host.name": "h2"}, ["b", "c"], 2.0)
    await proc.consume(Batch([a, b]))
    (out,) = sink.batches[0].metrics
    assert [s.attributes[0][1] for s in out.series] == ["a", "b", "c"]
    assert out.values == [1.0, 2.0, 2.0]
    assert out.metric.resource.attributes == (("service.name", "api"),)


async def test_unchanged_resources_forward_the_batch_as_is() -> None:
    proc, sink = processor([{"key": "env", "action": "update", "value": "prod"}])
    batch = Batch([group({"service.name": "api"}, ["a"])])
    await proc.consume(batch)
    assert sink.batches[0] is batch


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "{actions: [{key: a, action: upsert}]}",
            "processors.resource.actions[0]: expected value or from_attribute for action 'upsert'",
        ),
        (
            "{actions: [{key: a, action: hash, pattern: '*'}]}",
            "processors.resource.actions[0].pattern: invalid regex '*': "
            "missing argument to repetition operator '*'",
        ),
        (
            "{actions: [{key: a, action: upsert, value: {nested: map}}]}",
            "processors.resource.actions[0].value: expected a string, number, boolean or a list "
            "of them, got {'nested': 'map'}",
        ),
    ],
)
def test_config_errors_name_the_key(body: str, message: str) -> None:
    assert message in processor_config_problems("resource", body)


async def test_in_pipeline() -> None:
    config = load_config_text(
        """
receivers: {inject: {}}
processors: {resource: {actions: [{key: cloud.region, action: insert, value: eu-west-1}]}}
exporters: {capture: {}}
service:
  telemetry: {metrics: {address: ""}}
  pipelines: {metrics: {receivers: [inject], processors: [resource], exporters: [capture]}}
""",
        registry_with_capture(),
        {},
    )
    service = Service(config)
    await service.start()
    try:
        await InjectReceiver.instances["inject"].push(
            Batch([group({"service.name": "api"}, ["a"])])
        )
        capture = CaptureExporter.instances["capture"]
        await wait_until(lambda: bool(capture.batches))
        resource = capture.batches[0].metrics[0].metric.resource
        assert resource.attributes == (("cloud.region", "eu-west-1"), ("service.name", "api"))
    finally:
        await service.shutdown()
