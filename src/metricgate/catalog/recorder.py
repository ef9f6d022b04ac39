"""`AgentMetrics`: record the AI-agent catalog with the OpenTelemetry SDK, one method per metric.

An agent program creates one `AgentMetrics` pointed at metricgate's OTLP receiver (gRPC or HTTP)
and calls e.g. `record_agent_operation(...)`; metricgate then shows the catalog's Prometheus names
on its scrape page. Tests pass their own `MetricReader` (the SDK's `InMemoryMetricReader`).

Invariant: every histogram of the catalog is exported with the catalog's bucket boundaries. A
provider built here installs one View per histogram; a caller's own `MeterProvider` cannot take
Views later, so the boundaries also go to the SDK as instrument advice, which a provider uses
unless a View of the caller's says otherwise (`catalog_views()` gives the caller the Views).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Literal
from urllib.parse import urlsplit

from metricgate import __version__
from metricgate.extras import MissingExtraError

try:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import (
        MetricExporter,
        MetricReader,
        PeriodicExportingMetricReader,
    )
    from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
    from opentelemetry.sdk.resources import Resource
except ImportError as exc:
    raise MissingExtraError.of(exc, "catalog", "AgentMetrics (and metricgate demo)") from exc

from metricgate.catalog import spec as catalog
from metricgate.catalog.instruments import (
    CatalogCounter,
    CatalogGauge,
    CatalogHistogram,
    custom_spec,
)
from metricgate.catalog.spec import MetricKind

__all__ = ["SCOPE_NAME", "AgentMetrics", "ExportProtocol", "catalog_views"]

ExportProtocol = Literal["grpc", "http"]

SCOPE_NAME = "metricgate.catalog"
"""The instrumentation scope (exported as the `otel_scope_name` label)."""

_DEFAULT_ENDPOINTS: Mapping[str, str] = {
    "grpc": "http://localhost:4317",
    "http": "http://localhost:4318",
}


def catalog_views() -> list[View]:
    """One View per catalog histogram, setting its explicit bucket boundaries."""
    return [
        View(
            instrument_name=entry.otlp_name,
            aggregation=ExplicitBucketHistogramAggregation(list(entry.buckets)),
        )
        for entry in catalog.CATALOG
        if entry.kind is MetricKind.HISTOGRAM
    ]


def _exporter(protocol: ExportProtocol, endpoint: str | None, insecure: bool) -> MetricExporter:
    target = endpoint or _DEFAULT_ENDPOINTS[protocol]
    if protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
                OTLPMetricExporter as GrpcExporter,
            )
        except ImportError as exc:
            raise MissingExtraError.of(exc, "catalog", "AgentMetrics over gRPC") from exc

        return GrpcExporter(endpoint=target, insecure=insecure)
    if protocol == "http":
        try:
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
                OTLPMetricExporter as HttpExporter,
            )
        except ImportError as exc:
            raise MissingExtraError.of(exc, "catalog", "AgentMetrics over HTTP") from exc

        # Like OTEL_EXPORTER_OTLP_ENDPOINT: a base URL gets the signal path appended.
        if urlsplit(target).path in ("", "/"):
            target = target.rstrip("/") + "/v1/metrics"
        return HttpExporter(endpoint=target)
    raise ValueError(f"protocol must be 'grpc' or 'http', got {protocol!r}")


class AgentMetrics:
    """Typed recording API for the AI-agent catalog (see `metricgate.catalog.spec`).

    Give at most one of `meter_provider` (used as is; the caller owns and shuts it down),
    `reader` (a provider is built around it) or `endpoint`/`protocol` (a provider exporting OTLP
    every `export_interval` seconds is built). `service_name`, `service_instance_id` and
    `resource_attributes` describe the program when this class builds the provider; metricgate
    turns them into the `job` and `instance` labels.
    """

    def __init__(
        self,
        *,
        endpoint: str | None = None,
        protocol: ExportProtocol = "grpc",
        insecure: bool = True,
        service_name: str = "ai-agent",
        service_instance_id: str | None = None,
        resource_attributes: Mapping[str, str] | None = None,
        export_interval: float = 15.0,
        reader: MetricReader | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        if meter_provider is not None and (reader is not None or endpoint is not None):
            raise ValueError("give meter_provider alone, or reader/endpoint to build one")
        if reader is not None and endpoint is not None:
            raise ValueError("give either reader or endpoint, not both")
        if export_interval <= 0:
            raise ValueError(f"export_interval must be > 0 seconds, got {export_interval}")
        if meter_provider is None:
            if reader is None:
                reader = PeriodicExportingMetricReader(
                    _exporter(protocol, endpoint, insecure),
                    export_interval_millis=export_interval * 1000,
                )
            attributes: dict[str, str] = {"service.name": service_name}
            if service_instance_id:
                attributes["service.instance.id"] = service_instance_id
            attributes.update(resource_attributes or {})
            meter_provider = MeterProvider(
                metric_readers=[reader],
                resource=Resource.create(attributes),
                views=catalog_views(),
            )
            self._owns_provider = True
        else:
            self._owns_provider = False
        self._provider = meter_provider
        self._meter = meter_provider.get_meter(SCOPE_NAME, __version__)
        self._shut_down = False

        m = self._meter
        self._operations = CatalogCounter(catalog.AGENT_OPERATIONS, m)
        self._execution = CatalogHistogram(catalog.AGENT_EXECUTION_DURATION, m)
        self._tokens = CatalogCounter(catalog.AGENT_TOKEN_USAGE, m)
        self._cost = CatalogCounter(catalog.AGENT_COST, m)
        self._active = CatalogGauge(catalog.AGENT_ACTIVE_COUNT, m)
        self._tasks = CatalogCounter(catalog.TASK_EXECUTIONS, m)
        self._queue = CatalogGauge(catalog.TASK_QUEUE_DEPTH, m)
        self._dependencies = CatalogHistogram(catalog.TASK_DEPENDENCY_RESOLUTION_DURATION, m)
        self._memory = CatalogGauge(catalog.AGENT_MEMORY_USAGE, m)
        self._retrieval = CatalogHistogram(catalog.CONTEXT_RETRIEVAL_DURATION, m)
        self._http_requests = CatalogCounter(catalog.HTTP_REQUESTS, m)
        self._http_duration = CatalogHistogram(catalog.HTTP_REQUEST_DURATION, m)
        self._db_connections = CatalogGauge(catalog.DATABASE_CONNECTIONS_ACTIVE, m)
        self._db_query = CatalogHistogram(catalog.DATABASE_QUERY_DURATION, m)
        self._sessions = CatalogGauge(catalog.USER_SESSIONS_ACTIVE, m)
        self._features = CatalogCounter(catalog.FEATURE_USAGE, m)

    @property
    def meter_provider(self) -> MeterProvider:
        return self._provider

    # -- agents ---------------------------------------------------------------------------------

    def record_agent_operation(
        self, *, agent_id: str, agent_type: str, operation: str, provider: str, status: str
    ) -> None:
        """Count one operation; `status` is `success`, `error` or `timeout`."""
        self._operations.add(
            1,
            agent_id=agent_id,
            agent_type=agent_type,
            operation=operation,
            provider=provider,
            status=status,
        )

    def record_agent_execution(
        self, seconds: float, *, agent_id: str, agent_type: str, task_type: str, provider: str
    ) -> None:
        """Record how long one task execution took."""
        self._execution.record(
            seconds,
            agent_id=agent_id,
            agent_type=agent_type,
            task_type=task_type,
            provider=provider,
        )

    def time_agent_execution(
        self, *, agent_id: str, agent_type: str, task_type: str, provider: str
    ) -> AbstractContextManager[None]:
        """Time a `with` block as one execution; it is recorded even if the block raises.

        The labels are checked here, before the work runs, not after it has been paid for.
        """
        labels = {
            "agent_id": agent_id,
            "agent_type": agent_type,
            "task_type": task_type,
            "provider": provider,
        }
        catalog.AGENT_EXECUTION_DURATION.attributes(labels)
        return self._timed(labels)

    @contextmanager
    def _timed(self, labels: dict[str, str]) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self._execution.record(time.perf_counter() - start, **labels)

    def record_tokens(
        self,
        *,
        agent_id: str,
        agent_type: str,
        provider: str,
        input_tokens: int = 0,
        output_tokens: int = 0,
        total_tokens: int | None = None,
    ) -> None:
        """Count tokens of one call under token_type `input`, `output` and `total`.

        `total_tokens` defaults to input + output; pass it when a provider bills a different total.
        """
        total = input_tokens + output_tokens if total_tokens is None else total_tokens
        labels = {"agent_id": agent_id, "agent_type": agent_type, "provider": provider}
        for token_type, count in (("input", input_tokens), ("output", output_tokens)):
            if count:
                self._tokens.add(count, token_type=token_type, **labels)
        self._tokens.add(total, token_type="total", **labels)

    def record_cost(self, usd: float, *, agent_id: str, agent_type: str, provider: str) -> None:
        """Add `usd` US dollars spent."""
        self._cost.add(usd, agent_id=agent_id, agent_type=agent_type, provider=provider)

    def set_active_agents(self, count: int, *, agent_type: str, provider: str) -> None:
        """Set how many agents of this type and provider are running now."""
        self._active.set(count, agent_type=agent_type, provider=provider)

    def set_memory_usage(self, num_bytes: int, *, namespace: str, agent_type: str) -> None:
        """Set the bytes held in one memory namespace."""
        self._memory.set(num_bytes, namespace=namespace, agent_type=agent_type)

    def record_context_retrieval(
        self, seconds: float, *, namespace: str, retrieval_type: str
    ) -> None:
        """Record how long one context retrieval took."""
        self._retrieval.record(seconds, namespace=namespace, retrieval_type=retrieval_type)

    # -- tasks ----------------------------------------------------------------------------------

    def record_task(self, *, task_type: str, status: str, priority: str) -> None:
        """Count one finished task; `status` is `completed`, `failed` or `cancelled`."""
        self._tasks.add(1, task_type=task_type, status=status, priority=priority)

    def set_queue_depth(self, depth: int, *, queue_type: str, priority: str) -> None:
        """Set how many tasks wait in one queue."""
        self._queue.set(depth, queue_type=queue_type, priority=priority)

    def record_dependency_resolution(self, seconds: float) -> None:
        """Record how long resolving one task's dependencies took."""
        self._dependencies.record(seconds)

    # -- system ---------------------------------------------------------------------------------

    def record_http_request(
        self, method: str, route: str, status_code: int | str, duration: float
    ) -> None:
        """Count one served request and record its duration in seconds.

        `route` must be the route template (`/agents/{id}`), never the raw path: every distinct
        value is a new series.
        """
        self._http_requests.add(1, method=method, route=route, status_code=str(status_code))
        self._http_duration.record(duration, method=method, route=route)

    def set_db_connections(self, count: int, *, database: str, pool: str) -> None:
        """Set how many connections of one pool are in use."""
        self._db_connections.set(count, database=database, pool=pool)

    def record_db_query(self, seconds: float, *, operation: str, table: str) -> None:
        """Record how long one query took."""
        self._db_query.record(seconds, operation=operation, table=table)

    # -- business -------------------------------------------------------------------------------

    def set_active_sessions(self, count: int) -> None:
        """Set how many user sessions are open."""
        self._sessions.set(count)

    def record_feature_usage(self, *, feature: str, user_type: str) -> None:
        """Count one use of a feature."""
        self._features.add(1, feature=feature, user_type=user_type)

    # -- metrics outside the catalog ------------------------------------------------------------

    def counter(
        self,
        name: str,
        *,
        unit: str = "1",
        description: str = "",
        labels: Sequence[str] = (),
        allowed_values: Mapping[str, Sequence[str]] | None = None,
    ) -> CatalogCounter:
        """A counter outside the catalog, validated like catalog metrics (`.spec` has its name)."""
        spec = custom_spec(
            MetricKind.COUNTER,
            name,
            unit=unit,
            description=description,
            labels=tuple(labels),
            allowed_values=_frozen(allowed_values),
        )
        return CatalogCounter(spec, self._meter)

    def histogram(
        self,
        name: str,
        *,
        buckets: Sequence[float],
        unit: str = "s",
        description: str = "",
        labels: Sequence[str] = (),
        allowed_values: Mapping[str, Sequence[str]] | None = None,
    ) -> CatalogHistogram:
        """A histogram outside the catalog with explicit `buckets` (passed as SDK advice)."""
        spec = custom_spec(
            MetricKind.HISTOGRAM,
            name,
            unit=unit,
            description=description,
            labels=tuple(labels),
            allowed_values=_frozen(allowed_values),
            buckets=tuple(buckets),
        )
        return CatalogHistogram(spec, self._meter)

    def gauge(
        self,
        name: str,
        *,
        unit: str,
        description: str = "",
        labels: Sequence[str] = (),
        allowed_values: Mapping[str, Sequence[str]] | None = None,
    ) -> CatalogGauge:
        """A gauge outside the catalog; unit `1` makes its Prometheus name end in `_ratio`."""
        spec = custom_spec(
            MetricKind.GAUGE,
            name,
            unit=unit,
            description=description,
            labels=tuple(labels),
            allowed_values=_frozen(allowed_values),
        )
        return CatalogGauge(spec, self._meter)

    # -- lifecycle ------------------------------------------------------------------------------

    def force_flush(self, timeout_seconds: float = 10.0) -> bool:
        """Export what has been recorded now; False if the exporters did not finish in time."""
        if self._shut_down:
            return False
        return bool(self._provider.force_flush(int(timeout_seconds * 1000)))

    def shutdown(self, timeout_seconds: float = 10.0) -> None:
        """Flush and stop exporting (idempotent); a caller-owned provider is only flushed."""
        if self._shut_down:
            return
        self._shut_down = True
        if self._owns_provider:
            self._provider.shutdown(int(timeout_seconds * 1000))
        else:
            self._provider.force_flush(int(timeout_seconds * 1000))


def _frozen(values: Mapping[str, Sequence[str]] | None) -> dict[str, frozenset[str]]:
    return {key: frozenset(allowed) for key, allowed in (values or {}).items()}
