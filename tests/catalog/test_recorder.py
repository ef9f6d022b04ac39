"""`AgentMetrics` through the real OpenTelemetry SDK, read back with its InMemoryMetricReader."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    InMemoryMetricReader,
    Metric,
    Sum,
)

from metricgate.catalog import CATALOG, AgentMetrics, MetricKind, by_prometheus_name
from metricgate.catalog.recorder import SCOPE_NAME
from metricgate.translate.names import prometheus_metric_name

AGENT = {"agent_id": "a-1", "agent_type": "planner", "provider": "openai"}


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
def metrics(reader: InMemoryMetricReader) -> Iterator[AgentMetrics]:
    recorder = AgentMetrics(reader=reader, service_name="agents", service_instance_id="pod-1")
    yield recorder
    recorder.shutdown()


def collect(reader: InMemoryMetricReader) -> dict[str, Metric]:
    data = reader.get_metrics_data()
    out: dict[str, Metric] = {}
    for resource_metrics in data.resource_metrics if data else ():
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                out[metric.name] = metric
    return out


def points(metric: Metric) -> dict[frozenset[tuple[str, Any]], Any]:
    return {frozenset((p.attributes or {}).items()): p for p in metric.data.data_points}


def record_everything(m: AgentMetrics) -> None:
    m.record_agent_operation(operation="llm_call", status="success", **AGENT)
    m.record_agent_execution(2.5, task_type="plan", **AGENT)
    m.record_tokens(
        agent_id="a-1", agent_type="planner", provider="openai", input_tokens=100, output_tokens=40
    )
    m.record_cost(0.25, **AGENT)
    m.set_active_agents(3, agent_type="planner", provider="openai")
    m.record_task(task_type="plan", status="completed", priority="high")
    m.set_queue_depth(7, queue_type="default", priority="high")
    m.record_dependency_resolution(0.02)
    m.set_memory_usage(4096, namespace="team-a", agent_type="planner")
    m.record_context_retrieval(0.003, namespace="team-a", retrieval_type="vector")
    m.record_http_request("GET", "/agents/{id}", 200, 0.07)
    m.set_db_connections(12, database="main", pool="default")
    m.record_db_query(0.004, operation="select", table="tasks")
    m.set_active_sessions(42)
    m.record_feature_usage(feature="search", user_type="pro")


def test_every_catalog_entry_is_exported_with_its_name_unit_kind_and_labels(
    metrics: AgentMetrics, reader: InMemoryMetricReader
) -> None:
    record_everything(metrics)
    exported = collect(reader)
    assert set(exported) == {spec.otlp_name for spec in CATALOG}
    for spec in CATALOG:
        metric = exported[spec.otlp_name]
        assert metric.unit == spec.unit, spec.otlp_name
        assert metric.description == spec.description
        data = metric.data
        if spec.kind is MetricKind.COUNTER:
            assert isinstance(data, Sum) and data.is_monotonic
            assert data.aggregation_temporality is AggregationTemporality.CUMULATIVE
        elif spec.kind is MetricKind.HISTOGRAM:
            assert isinstance(data, Histogram)
            for point in data.data_points:
                assert tuple(point.explicit_bounds) == spec.buckets, spec.otlp_name
        else:
            assert isinstance(data, Gauge)
        for attributes in points(metric):
            assert sorted(key for key, _ in attributes) == sorted(spec.labels), spec.otlp_name
        # What metricgate will call it, from what the SDK actually sent.
        name = prometheus_metric_name(
            metric.name,
            metric.unit or "",
            counter=isinstance(data, Sum) and data.is_monotonic,
            gauge=isinstance(data, Gauge),
        )
        assert name == spec.prometheus_name


def test_resource_and_scope_describe_the_program(
    metrics: AgentMetrics, reader: InMemoryMetricReader
) -> None:
    metrics.set_active_sessions(1)
    data = reader.get_metrics_data()
    assert data is not None
    (resource_metrics,) = data.resource_metrics
    assert resource_metrics.resource.attributes["service.name"] == "agents"
    assert resource_metrics.resource.attributes["service.instance.id"] == "pod-1"
    (scope_metrics,) = resource_metrics.scope_metrics
    assert scope_metrics.scope.name == SCOPE_NAME


def test_values_and_attributes(metrics: AgentMetrics, reader: InMemoryMetricReader) -> None:
    record_everything(metrics)
    metrics.record_http_request("POST", "/tasks", 503, 1.5)
    exported = collect(reader)

    tokens = {
        dict(key)["token_type"]: p.value for key, p in points(exported["agent.token.usage"]).items()
    }
    assert tokens == {"input": 100, "output": 40, "total": 140}
    assert points(exported["agent.cost"])[frozenset(AGENT.items())].value == 0.25

    requests = points(exported["http.requests"])
    key = frozenset({"method": "POST", "route": "/tasks", "status_code": "503"}.items())
    assert requests[key].value == 1
    durations = points(exported["http.request.duration"])
    post = durations[frozenset({"method": "POST", "route": "/tasks"}.items())]
    assert (post.count, post.sum) == (1, 1.5)
    # 1.5 s falls in the (1, 2] bucket of 0.01 0.05 0.1 0.5 1 2 5 10.
    assert list(post.bucket_counts) == [0, 0, 0, 0, 0, 1, 0, 0, 0]

    assert points(exported["user.sessions.active"])[frozenset()].value == 42
    metrics.set_active_sessions(40)
    assert points(collect(reader)["user.sessions.active"])[frozenset()].value == 40


def test_record_tokens_total_can_be_given(
    metrics: AgentMetrics, reader: InMemoryMetricReader
) -> None:
    metrics.record_tokens(agent_id="a-1", agent_type="planner", provider="openai", total_tokens=500)
    tokens = {
        dict(key)["token_type"]: p.value
        for key, p in points(collect(reader)["agent.token.usage"]).items()
    }
    assert tokens == {"total": 500}


def test_time_agent_execution_records_even_when_the_block_raises(
    metrics: AgentMetrics, reader: InMemoryMetricReader
) -> None:
    labels = {**AGENT, "task_type": "plan"}
    with metrics.time_agent_execution(**labels):
        pass
    with pytest.raises(RuntimeError), metrics.time_agent_execution(**labels):
        raise RuntimeError("agent crashed")
    (point,) = points(collect(reader)["agent.execution.duration"]).values()
    assert point.count == 2
    assert 0 <= point.sum < 1


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda m: m.record_agent_operation(operation="x", status="failed", **AGENT),
            "label 'status' is 'failed'; allowed values: ['error', 'success', 'timeout']",
        ),
        (
            lambda m: m.record_task(task_type="x", status="success", priority="low"),
            "allowed values: ['cancelled', 'completed', 'failed']",
        ),
        (
            lambda m: m.record_agent_operation(operation="", status="error", **AGENT),
            "label 'operation' needs a non-empty string",
        ),
        (lambda m: m.record_cost(-1.0, **AGENT), "must not be negative"),
        (lambda m: m.record_db_query(float("nan"), operation="a", table="b"), "must be finite"),
        (
            lambda m: m.time_agent_execution(
                agent_id="a", agent_type="", task_type="t", provider="p"
            ),
            "label 'agent_type' needs a non-empty string",
        ),
    ],
)
def test_invalid_values_raise_and_record_nothing(
    metrics: AgentMetrics, reader: InMemoryMetricReader, call: Any, message: str
) -> None:
    with pytest.raises(ValueError) as excinfo:
        call(metrics)
    assert message in str(excinfo.value)
    assert collect(reader) == {}


def test_custom_instruments(metrics: AgentMetrics, reader: InMemoryMetricReader) -> None:
    retries = metrics.counter("agent.retries", unit="{retry}", labels=["agent_type"])
    latency = metrics.histogram("tool.latency", buckets=[0.1, 1], labels=["tool"])
    ratio = metrics.gauge(
        "cache.hit", unit="1", allowed_values={"tier": ["l1", "l2"]}, labels=["tier"]
    )
    assert retries.spec.prometheus_name == "agent_retries_total"
    assert latency.spec.prometheus_name == "tool_latency_seconds"
    assert ratio.spec.prometheus_name == "cache_hit_ratio"
    retries.add(agent_type="planner")
    latency.record(0.5, tool="search")
    ratio.set(0.9, tier="l1")
    with pytest.raises(ValueError, match="unexpected \\['tool'\\]"):
        retries.add(agent_type="planner", tool="x")
    with pytest.raises(ValueError, match="allowed values"):
        ratio.set(0.5, tier="l3")
    exported = collect(reader)
    assert tuple(next(iter(points(exported["tool.latency"]).values())).explicit_bounds) == (0.1, 1)
    assert (
        points(exported["agent.retries"])[frozenset({"agent_type": "planner"}.items())].value == 1
    )


def test_callers_provider_gets_catalog_buckets_as_advice() -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])  # no Views
    recorder = AgentMetrics(meter_provider=provider)
    recorder.record_db_query(0.2, operation="select", table="t")
    recorder.shutdown()  # flushes, but the caller still owns the provider
    bounds = next(iter(points(collect(reader)["database.query.duration"]).values())).explicit_bounds
    assert tuple(bounds) == by_prometheus_name("database_query_duration_seconds").buckets
    provider.shutdown()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"meter_provider": MeterProvider(), "reader": InMemoryMetricReader()},
        {"reader": InMemoryMetricReader(), "endpoint": "http://127.0.0.1:4317"},
        {"reader": InMemoryMetricReader(), "export_interval": 0},
    ],
)
def test_conflicting_construction_arguments(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        AgentMetrics(**kwargs)


def test_shutdown_is_idempotent(metrics: AgentMetrics) -> None:
    assert metrics.force_flush()
    metrics.shutdown()
    metrics.shutdown()
    assert not metrics.force_flush()
