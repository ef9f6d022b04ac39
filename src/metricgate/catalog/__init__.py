"""The AI-agent metric catalog: its specification, a recorder, Prometheus rules and dashboards.

`spec` is the single source of truth (names, units, labels, buckets); `recorder` records it with
the OpenTelemetry SDK, `rules` and `dashboards` generate Prometheus rule files and Grafana
dashboards that query it, `charts` says what the Datadog and CloudWatch dashboards show
(`datadog_dashboards`, `cloudwatch_dashboards` render and push them), `probe` checks that a
gateway answers before `demo` sends to it, and `cli` adds `metricgate catalog ...` and `demo`.

Invariant: importing this package needs only metricgate's own dependencies; the parts that need the
`catalog` extra, the OpenTelemetry SDK (`AgentMetrics`, ...) or grafana-foundation-sdk
(`write_dashboards`, ...), are imported on first use and say which extra is missing, so `metricgate
catalog rules` and the Datadog and CloudWatch dashboards work without them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from metricgate.catalog.rules import write_rules
from metricgate.catalog.spec import CATALOG, MetricKind, MetricSpec, by_prometheus_name

if TYPE_CHECKING:
    from metricgate.catalog.dashboards import build_dashboards, write_dashboards
    from metricgate.catalog.instruments import CatalogCounter, CatalogGauge, CatalogHistogram
    from metricgate.catalog.recorder import AgentMetrics, catalog_views

__all__ = [
    "CATALOG",
    "AgentMetrics",
    "CatalogCounter",
    "CatalogGauge",
    "CatalogHistogram",
    "MetricKind",
    "MetricSpec",
    "build_dashboards",
    "by_prometheus_name",
    "catalog_views",
    "write_dashboards",
    "write_rules",
]

_LAZY = {
    "AgentMetrics": "metricgate.catalog.recorder",
    "catalog_views": "metricgate.catalog.recorder",
    "CatalogCounter": "metricgate.catalog.instruments",
    "CatalogGauge": "metricgate.catalog.instruments",
    "CatalogHistogram": "metricgate.catalog.instruments",
    "build_dashboards": "metricgate.catalog.dashboards",
    "write_dashboards": "metricgate.catalog.dashboards",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
