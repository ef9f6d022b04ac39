"""The catalog matches the issue's table, and each OTLP name translates to its Prometheus name."""

from __future__ import annotations

import pytest

from metricgate.catalog import CATALOG, MetricKind, MetricSpec, by_prometheus_name
from metricgate.translate.names import prometheus_metric_name

C, H, G = MetricKind.COUNTER, MetricKind.HISTOGRAM, MetricKind.GAUGE

# The contract from the issue: name -> (kind, labels, buckets). Rules and dashboards rely on it.
TABLE: dict[str, tuple[MetricKind, tuple[str, ...], tuple[float, ...]]] = {
    "agent_operations_total": (
        C,
        ("agent_id", "agent_type", "operation", "provider", "status"),
        (),
    ),
    "agent_execution_duration_seconds": (
        H,
        ("agent_id", "agent_type", "task_type", "provider"),
        (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120),
    ),
    "agent_token_usage_total": (C, ("agent_id", "agent_type", "provider", "token_type"), ()),
    "agent_cost_total": (C, ("agent_id", "agent_type", "provider"), ()),
    "agent_active_count": (G, ("agent_type", "provider"), ()),
    "task_executions_total": (C, ("task_type", "status", "priority"), ()),
    "task_queue_depth": (G, ("queue_type", "priority"), ()),
    "task_dependency_resolution_duration_seconds": (H, (), (0.01, 0.05, 0.1, 0.5, 1, 2, 5)),
    "agent_memory_usage_bytes": (G, ("namespace", "agent_type"), ()),
    "context_retrieval_duration_seconds": (
        H,
        ("namespace", "retrieval_type"),
        (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1),
    ),
    "http_requests_total": (C, ("method", "route", "status_code"), ()),
    "http_request_duration_seconds": (H, ("method", "route"), (0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10)),
    "database_connections_active": (G, ("database", "pool"), ()),
    "database_query_duration_seconds": (
        H,
        ("operation", "table"),
        (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2),
    ),
    "user_sessions_active": (G, (), ()),
    "feature_usage_total": (C, ("feature", "user_type"), ()),
}


def test_catalog_matches_the_table() -> None:
    assert [spec.prometheus_name for spec in CATALOG] == list(TABLE)
    for spec in CATALOG:
        assert (spec.kind, spec.labels, spec.buckets) == TABLE[spec.prometheus_name]


def test_allowed_values() -> None:
    assert by_prometheus_name("agent_operations_total").allowed_values == {
        "status": frozenset({"success", "error", "timeout"})
    }
    assert by_prometheus_name("agent_token_usage_total").allowed_values == {
        "token_type": frozenset({"input", "output", "total"})
    }
    assert by_prometheus_name("task_executions_total").allowed_values == {
        "status": frozenset({"completed", "failed", "cancelled"})
    }


@pytest.mark.parametrize("spec", CATALOG, ids=lambda spec: spec.prometheus_name)
def test_otlp_name_and_unit_translate_to_the_catalog_name(spec: MetricSpec) -> None:
    translated = prometheus_metric_name(
        spec.otlp_name,
        spec.unit,
        counter=spec.kind is MetricKind.COUNTER,
        gauge=spec.kind is MetricKind.GAUGE,
    )
    assert translated == spec.prometheus_name


def test_attributes_checks_keys_and_values() -> None:
    spec = by_prometheus_name("task_executions_total")
    good = {"task_type": "plan", "status": "failed", "priority": "high"}
    assert spec.attributes(good) == good
    with pytest.raises(ValueError, match=r"missing \['priority'\], unexpected \['queue'\]"):
        spec.attributes({"task_type": "plan", "status": "failed", "queue": "q"})
    with pytest.raises(ValueError, match="label 'status' is 'done'"):
        spec.attributes({**good, "status": "done"})
    with pytest.raises(ValueError, match="'task_executions_total': label 'priority' needs"):
        spec.attributes({**good, "priority": ""})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"labels": ("bad-label",)}, "not a valid Prometheus label"),
        ({"labels": ("a", "a")}, "duplicate label keys"),
        ({"allowed_values": {"other": frozenset({"x"})}}, "undeclared labels ['other']"),
        ({"kind": MetricKind.HISTOGRAM}, "needs bucket boundaries"),
        ({"kind": MetricKind.HISTOGRAM, "buckets": (1.0, 1.0)}, "strictly increasing"),
        ({"buckets": (1.0,)}, "only histograms have buckets"),
    ],
)
def test_spec_validation(changes: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {
        "prometheus_name": "x_total",
        "otlp_name": "x",
        "unit": "{x}",
        "kind": MetricKind.COUNTER,
        "description": "x",
        "labels": ("a",),
        **changes,
    }
    with pytest.raises(ValueError) as excinfo:
        MetricSpec(**fields)  # type: ignore[arg-type]
    assert message in str(excinfo.value)
