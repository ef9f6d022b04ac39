"""The AI-agent metric catalog as typed data: one `MetricSpec` per metric a dashboard or rule reads.

Each entry names the metric twice: `otlp_name` + `unit` is what an instrumented program creates
with the OpenTelemetry SDK, `prometheus_name` is what metricgate's scrape page shows for it. The
OTLP side is chosen so that the OpenTelemetry -> Prometheus translation (dots to underscores, unit
suffix unless already a token of the name, `_total` on monotonic counters, `_ratio` on gauges in
`1`) yields exactly the catalog name:

- durations use unit `s` on a name without `seconds` (`agent.execution.duration` ->
  `agent_execution_duration_seconds`); `agent.memory.usage` uses `By` -> `..._bytes`;
- counters use a curly-brace annotation unit (`{operation}`, `{token}`, ...), which adds no suffix,
  and get `_total` from the translation, so `agent.operations` -> `agent_operations_total`;
- `agent.cost` uses `{USD}`: UCUM has no currency unit, and a bare `USD` would be used as written
  and yield `agent_cost_USD_total`;
- gauges use an annotation unit too (`{agent}`, `{task}`, ...): unit `1` would add `_ratio`.

Invariant: `prometheus_name` is what `metricgate.translate.names.prometheus_metric_name` returns
for (`otlp_name`, `unit`, kind); rules and dashboards refer only to `prometheus_name` and to the
label keys listed here (tests/catalog/test_spec.py holds every entry to that).
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Final

__all__ = [
    "CATALOG",
    "MetricKind",
    "MetricSpec",
    "by_prometheus_name",
]

_LABEL_RE: Final = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*\Z")


class MetricKind(enum.Enum):
    """The instrument an entry is recorded with, which decides its Prometheus type."""

    COUNTER = "counter"  # monotonic cumulative sum -> Prometheus counter (`_total`)
    HISTOGRAM = "histogram"  # explicit-bucket histogram -> `_bucket`, `_sum`, `_count`
    GAUGE = "gauge"  # last value -> Prometheus gauge


@dataclass(frozen=True)
class MetricSpec:
    """One catalog metric: its names on both sides, unit, kind, labels and bucket boundaries."""

    prometheus_name: str
    otlp_name: str
    unit: str
    kind: MetricKind
    description: str
    labels: tuple[str, ...] = ()
    allowed_values: Mapping[str, frozenset[str]] = field(default_factory=dict, hash=False)
    """Label key -> the only values it may take; a key not here takes any non-empty string."""
    buckets: tuple[float, ...] = ()
    """Explicit histogram bucket upper bounds in `unit`, strictly increasing (histograms only)."""

    def __post_init__(self) -> None:
        where = f"metric {self.prometheus_name!r}"
        for label in self.labels:
            if not _LABEL_RE.match(label):
                raise ValueError(f"{where}: label key {label!r} is not a valid Prometheus label")
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"{where}: duplicate label keys in {self.labels}")
        unknown = set(self.allowed_values) - set(self.labels)
        if unknown:
            raise ValueError(f"{where}: allowed_values for undeclared labels {sorted(unknown)}")
        if self.kind is MetricKind.HISTOGRAM:
            if not self.buckets:
                raise ValueError(f"{where}: a histogram needs bucket boundaries")
            if any(not math.isfinite(b) for b in self.buckets) or any(
                lo >= hi for lo, hi in pairwise(self.buckets)
            ):
                raise ValueError(f"{where}: buckets must be finite and strictly increasing")
        elif self.buckets:
            raise ValueError(f"{where}: only histograms have buckets")

    def attributes(self, values: Mapping[str, str]) -> dict[str, str]:
        """Check `values` against this entry's labels and return them as OTLP attributes.

        Raises ValueError naming the metric and label when a key is missing or unexpected, a value
        is empty, or a value is outside the label's allowed set.
        """
        where = f"metric {self.prometheus_name!r}"
        missing = [key for key in self.labels if key not in values]
        extra = sorted(set(values) - set(self.labels))
        if missing or extra:
            raise ValueError(
                f"{where}: expected labels {list(self.labels)}, "
                f"missing {missing}, unexpected {extra}"
            )
        for key in self.labels:
            value = values[key]
            if not isinstance(value, str) or not value:
                raise ValueError(f"{where}: label {key!r} needs a non-empty string, got {value!r}")
            allowed = self.allowed_values.get(key)
            if allowed is not None and value not in allowed:
                raise ValueError(
                    f"{where}: label {key!r} is {value!r}; allowed values: {sorted(allowed)}"
                )
        return {key: values[key] for key in self.labels}


def _allowed(**labels: tuple[str, ...]) -> dict[str, frozenset[str]]:
    return {key: frozenset(values) for key, values in labels.items()}


AGENT_OPERATIONS: Final = MetricSpec(
    prometheus_name="agent_operations_total",
    otlp_name="agent.operations",
    unit="{operation}",
    kind=MetricKind.COUNTER,
    description="Operations performed by agents (tool calls, LLM calls, ...), by outcome.",
    labels=("agent_id", "agent_type", "operation", "provider", "status"),
    allowed_values=_allowed(status=("success", "error", "timeout")),
)
AGENT_EXECUTION_DURATION: Final = MetricSpec(
    prometheus_name="agent_execution_duration_seconds",
    otlp_name="agent.execution.duration",
    unit="s",
    kind=MetricKind.HISTOGRAM,
    description="Wall-clock time an agent spends executing one task.",
    labels=("agent_id", "agent_type", "task_type", "provider"),
    buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120),
)
AGENT_TOKEN_USAGE: Final = MetricSpec(
    prometheus_name="agent_token_usage_total",
    otlp_name="agent.token.usage",
    unit="{token}",
    kind=MetricKind.COUNTER,
    description="LLM tokens used; token_type=total is input + output: never sum over token_type.",
    labels=("agent_id", "agent_type", "provider", "token_type"),
    allowed_values=_allowed(token_type=("input", "output", "total")),
)
AGENT_COST: Final = MetricSpec(
    prometheus_name="agent_cost_total",
    otlp_name="agent.cost",
    unit="{USD}",
    kind=MetricKind.COUNTER,
    description="Money spent on model providers, in US dollars.",
    labels=("agent_id", "agent_type", "provider"),
)
AGENT_ACTIVE_COUNT: Final = MetricSpec(
    prometheus_name="agent_active_count",
    otlp_name="agent.active.count",
    unit="{agent}",
    kind=MetricKind.GAUGE,
    description="Agents currently running.",
    labels=("agent_type", "provider"),
)
TASK_EXECUTIONS: Final = MetricSpec(
    prometheus_name="task_executions_total",
    otlp_name="task.executions",
    unit="{execution}",
    kind=MetricKind.COUNTER,
    description="Tasks that finished, by outcome and priority.",
    labels=("task_type", "status", "priority"),
    allowed_values=_allowed(status=("completed", "failed", "cancelled")),
)
TASK_QUEUE_DEPTH: Final = MetricSpec(
    prometheus_name="task_queue_depth",
    otlp_name="task.queue.depth",
    unit="{task}",
    kind=MetricKind.GAUGE,
    description="Tasks waiting in a queue.",
    labels=("queue_type", "priority"),
)
TASK_DEPENDENCY_RESOLUTION_DURATION: Final = MetricSpec(
    prometheus_name="task_dependency_resolution_duration_seconds",
    otlp_name="task.dependency.resolution.duration",
    unit="s",
    kind=MetricKind.HISTOGRAM,
    description="Time spent resolving a task's dependencies before it can run.",
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 2, 5),
)
AGENT_MEMORY_USAGE: Final = MetricSpec(
    prometheus_name="agent_memory_usage_bytes",
    otlp_name="agent.memory.usage",
    unit="By",
    kind=MetricKind.GAUGE,
    description="Bytes held in agent memory stores.",
    labels=("namespace", "agent_type"),
)
CONTEXT_RETRIEVAL_DURATION: Final = MetricSpec(
    prometheus_name="context_retrieval_duration_seconds",
    otlp_name="context.retrieval.duration",
    unit="s",
    kind=MetricKind.HISTOGRAM,
    description="Time to retrieve context (vector search, key lookup, ...) for an agent.",
    labels=("namespace", "retrieval_type"),
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1),
)
HTTP_REQUESTS: Final = MetricSpec(
    prometheus_name="http_requests_total",
    otlp_name="http.requests",
    unit="{request}",
    kind=MetricKind.COUNTER,
    description="HTTP requests served, by route template and status code.",
    labels=("method", "route", "status_code"),
)
HTTP_REQUEST_DURATION: Final = MetricSpec(
    prometheus_name="http_request_duration_seconds",
    otlp_name="http.request.duration",
    unit="s",
    kind=MetricKind.HISTOGRAM,
    description="Time to serve one HTTP request.",
    labels=("method", "route"),
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10),
)
DATABASE_CONNECTIONS_ACTIVE: Final = MetricSpec(
    prometheus_name="database_connections_active",
    otlp_name="database.connections.active",
    unit="{connection}",
    kind=MetricKind.GAUGE,
    description="Database connections currently checked out of a pool.",
    labels=("database", "pool"),
)
DATABASE_QUERY_DURATION: Final = MetricSpec(
    prometheus_name="database_query_duration_seconds",
    otlp_name="database.query.duration",
    unit="s",
    kind=MetricKind.HISTOGRAM,
    description="Time to run one database query.",
    labels=("operation", "table"),
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2),
)
USER_SESSIONS_ACTIVE: Final = MetricSpec(
    prometheus_name="user_sessions_active",
    otlp_name="user.sessions.active",
    unit="{session}",
    kind=MetricKind.GAUGE,
    description="User sessions currently open.",
)
FEATURE_USAGE: Final = MetricSpec(
    prometheus_name="feature_usage_total",
    otlp_name="feature.usage",
    unit="{use}",
    kind=MetricKind.COUNTER,
    description="Times a product feature was used, by user type.",
    labels=("feature", "user_type"),
)

CATALOG: Final[tuple[MetricSpec, ...]] = (
    AGENT_OPERATIONS,
    AGENT_EXECUTION_DURATION,
    AGENT_TOKEN_USAGE,
    AGENT_COST,
    AGENT_ACTIVE_COUNT,
    TASK_EXECUTIONS,
    TASK_QUEUE_DEPTH,
    TASK_DEPENDENCY_RESOLUTION_DURATION,
    AGENT_MEMORY_USAGE,
    CONTEXT_RETRIEVAL_DURATION,
    HTTP_REQUESTS,
    HTTP_REQUEST_DURATION,
    DATABASE_CONNECTIONS_ACTIVE,
    DATABASE_QUERY_DURATION,
    USER_SESSIONS_ACTIVE,
    FEATURE_USAGE,
)
"""Every catalog entry, in the order of the catalog table."""

_BY_NAME: Final = {spec.prometheus_name: spec for spec in CATALOG}


def by_prometheus_name(name: str) -> MetricSpec:
    """The catalog entry whose scrape-page name is `name` (KeyError if there is none)."""
    return _BY_NAME[name]
