"""The catalog's dashboards as backend-neutral charts, for the Datadog and CloudWatch renderers.

The Grafana dashboards (`agent_dashboards`, `system_dashboards`) are PromQL over the Prometheus
names; Datadog and CloudWatch see the same data under its OTLP names, through the datadog and
cloudwatch exporters. This module says once what each of those dashboards shows (a chart is a
catalog metric, how to read it, which labels split or filter it), and `datadog_dashboards` /
`cloudwatch_dashboards` turn that into each backend's dashboard JSON.

Invariant: every chart reads one catalog metric by its `MetricSpec`, and splits or filters only by
labels that metric has, so a renderer can trust the names it is given.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from metricgate.catalog import spec
from metricgate.catalog.spec import MetricKind, MetricSpec

__all__ = ["BOARDS", "Board", "Chart", "Reading"]


class Reading(enum.Enum):
    """How a chart reads its metric (decided by the metric's kind unless a chart says more)."""

    COUNT = "count"  # a counter: how much it grew per interval
    LEVEL = "level"  # a gauge: its value
    MEAN = "mean"  # a histogram: the mean observation (sum / count)


_READING = {
    MetricKind.COUNTER: Reading.COUNT,
    MetricKind.GAUGE: Reading.LEVEL,
    MetricKind.HISTOGRAM: Reading.MEAN,
}


@dataclass(frozen=True)
class Chart:
    """One widget: a metric read one way, optionally split by labels and filtered by values."""

    title: str
    metric: MetricSpec
    by: tuple[str, ...] = ()
    where: tuple[tuple[str, str], ...] = ()
    """(label, value) pairs the series must have."""
    where_not: tuple[tuple[str, str], ...] = ()
    """(label, value) pairs the series must not have."""
    single_value: bool = False
    """A single number for the time range (a stat) instead of a time series."""
    combine: str = "sum"
    """How series of a gauge combine (`sum`, `avg`, `max`); counters and histograms always sum."""

    def __post_init__(self) -> None:
        named = [*self.by, *(k for k, _ in self.where), *(k for k, _ in self.where_not)]
        unknown = sorted(set(named) - set(self.metric.labels))
        if unknown:
            raise ValueError(f"chart {self.title!r}: {self.metric.otlp_name} has no {unknown}")

    @property
    def reading(self) -> Reading:
        return _READING[self.metric.kind]


@dataclass(frozen=True)
class Board:
    """One dashboard: its title, a file/dashboard name, filter variables and charts."""

    title: str
    slug: str
    charts: tuple[Chart, ...]
    variables: tuple[str, ...] = ()
    """Labels offered as dashboard-wide filters (applied to the charts whose metric has them)."""


_AGENT_VARIABLES = ("agent_type", "provider")

AGENT_OVERVIEW = Board(
    "AI Agent Overview",
    "ai-agent-overview",
    (
        Chart("Active agents", spec.AGENT_ACTIVE_COUNT, single_value=True),
        Chart("Operations", spec.AGENT_OPERATIONS, single_value=True),
        Chart(
            "Failed operations",
            spec.AGENT_OPERATIONS,
            where=(("status", "error"),),
            single_value=True,
        ),
        Chart("Cost (USD)", spec.AGENT_COST, single_value=True),
        Chart("Operations by status", spec.AGENT_OPERATIONS, by=("status",)),
        Chart("Active agents by type", spec.AGENT_ACTIVE_COUNT, by=("agent_type",)),
        Chart(
            "Execution time by agent type (s)", spec.AGENT_EXECUTION_DURATION, by=("agent_type",)
        ),
        Chart(
            "Token usage by provider",
            spec.AGENT_TOKEN_USAGE,
            by=("provider",),
            where_not=(("token_type", "total"),),
        ),
        Chart("Cost by provider (USD)", spec.AGENT_COST, by=("provider",)),
        Chart(
            "Agent memory by namespace (bytes)",
            spec.AGENT_MEMORY_USAGE,
            by=("namespace",),
            combine="avg",
        ),
        Chart("Task queue depth", spec.TASK_QUEUE_DEPTH, by=("queue_type",)),
    ),
    _AGENT_VARIABLES,
)

SYSTEM_HEALTH = Board(
    "System Health & Performance",
    "system-health",
    (
        Chart("HTTP requests", spec.HTTP_REQUESTS, single_value=True),
        Chart("DB connections in use", spec.DATABASE_CONNECTIONS_ACTIVE, single_value=True),
        Chart("HTTP requests by route", spec.HTTP_REQUESTS, by=("route",)),
        Chart("HTTP latency by route (s)", spec.HTTP_REQUEST_DURATION, by=("route",)),
        Chart("HTTP responses by status code", spec.HTTP_REQUESTS, by=("status_code",)),
        Chart("DB connections by pool", spec.DATABASE_CONNECTIONS_ACTIVE, by=("pool",)),
        Chart("DB query time by table (s)", spec.DATABASE_QUERY_DURATION, by=("table",)),
        Chart(
            "Context retrieval time (s)", spec.CONTEXT_RETRIEVAL_DURATION, by=("retrieval_type",)
        ),
        Chart("Task dependency resolution (s)", spec.TASK_DEPENDENCY_RESOLUTION_DURATION),
    ),
)

BUSINESS_KPIS = Board(
    "Business Metrics & KPIs",
    "business-kpis",
    (
        Chart("Active user sessions", spec.USER_SESSIONS_ACTIVE, single_value=True),
        Chart(
            "Tokens",
            spec.AGENT_TOKEN_USAGE,
            where_not=(("token_type", "total"),),
            single_value=True,
        ),
        Chart("Cost (USD)", spec.AGENT_COST, single_value=True),
        Chart("Active user sessions", spec.USER_SESSIONS_ACTIVE),
        Chart("Feature usage", spec.FEATURE_USAGE, by=("feature",)),
        Chart("Task outcomes", spec.TASK_EXECUTIONS, by=("status",)),
        Chart(
            "Tokens by provider",
            spec.AGENT_TOKEN_USAGE,
            by=("provider",),
            where_not=(("token_type", "total"),),
        ),
        Chart(
            "Successful operations by agent type",
            spec.AGENT_OPERATIONS,
            by=("agent_type",),
            where=(("status", "success"),),
        ),
    ),
    _AGENT_VARIABLES,
)

BOARDS: tuple[Board, ...] = (AGENT_OVERVIEW, SYSTEM_HEALTH, BUSINESS_KPIS)
"""The catalog's dashboards (the gateway's own health board stays Grafana-only: metricgate's own
telemetry is scraped by Prometheus, not sent to Datadog or CloudWatch)."""
