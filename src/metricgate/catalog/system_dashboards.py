"""The "System Health & Performance" and "metricgate Health" dashboards.

Invariant: "metricgate Health" reads only the gateway's own metric names (STYLE.md's
`metricgate_<component_kind>_<what>_<unit>`) and `process_resident_memory_bytes`, filtered by the
scrape `job` that serves them.
"""

from __future__ import annotations

from metricgate.catalog.panels import (
    assemble_dashboard,
    label_variable,
    quantile_queries,
    query,
    rate_expr,
    stat_panel,
    timeseries_panel,
)
from metricgate.extras import MissingExtraError

try:
    from grafana_foundation_sdk.builders import dashboard as dash
except ImportError as exc:
    raise MissingExtraError.of(exc, "catalog", "the Grafana dashboards") from exc

__all__ = ["metricgate_health", "system_health"]

# Filters for the template variables; "All" sends `.*`, which matches every value.
_ROUTE = 'route=~"$route"'
_JOB = 'job=~"$job"'

# Selectors over the recording rules (metricgate.catalog.rules), filtered by the variables.
_HTTP = f"route_status_code:http_requests:rate5m{{{_ROUTE}}}"
_HTTP_5XX = f'route_status_code:http_requests:rate5m{{status_code=~"5..", {_ROUTE}}}'
_HTTP_BUCKETS = f"route:http_request_duration_seconds_bucket:rate5m{{{_ROUTE}}}"
_DB_BUCKETS = "operation:database_query_duration_seconds_bucket:rate5m"
# Raw series.
_RAW_HTTP = f"http_requests_total{{{_ROUTE}}}"
_DB_CONNECTIONS = 'database_connections_active{database=~"$database"}'

# The gateway's own metrics, filtered by the scrape job that serves them.
_ACCEPTED = f"metricgate_receiver_accepted_points_total{{{_JOB}}}"
_REFUSED = f"metricgate_receiver_refused_points_total{{{_JOB}}}"
_SENT = f"metricgate_exporter_sent_points_total{{{_JOB}}}"
_FAILED = f"metricgate_exporter_send_failed_points_total{{{_JOB}}}"
_QUEUE_SIZE = f"metricgate_exporter_queue_size{{{_JOB}}}"
_QUEUE_CAPACITY = f"metricgate_exporter_queue_capacity{{{_JOB}}}"
_ACTIVE_SERIES = f"metricgate_processor_active_series{{{_JOB}}}"
_MEMORY = f"process_resident_memory_bytes{{{_JOB}}}"


def system_health() -> dash.Dashboard:
    """HTTP traffic and latency, database connections and query time, task dependencies."""
    return assemble_dashboard(
        "System Health & Performance",
        "metricgate-system-health",
        "HTTP traffic and latency, database connections and query time.",
        [
            label_variable("route", "http_requests_total"),
            label_variable("database", "database_connections_active"),
        ],
        [
            stat_panel(
                "Requests / s",
                "HTTP requests, 5m rate.",
                "reqps",
                query(f"sum({_HTTP})"),
            ),
            stat_panel(
                "5xx ratio",
                "Share of requests answered with a 5xx status, 5m rate.",
                "percentunit",
                query(f"sum({_HTTP_5XX}) / sum({_HTTP})"),
            ),
            stat_panel(
                "p95 latency",
                "p95 time to serve a request, 5m window.",
                "s",
                query(f"histogram_quantile(0.95, sum by (le) ({_HTTP_BUCKETS}))"),
            ),
            stat_panel(
                "DB connections in use",
                "Summed over pools and instances.",
                "short",
                query(f"sum({_DB_CONNECTIONS})"),
            ),
            timeseries_panel(
                "HTTP request rate by route",
                "Requests per second.",
                "reqps",
                [query(f"sum by (route) ({rate_expr(_RAW_HTTP)})", "{{route}}")],
            ),
            timeseries_panel(
                "HTTP latency",
                "p50 and p95 time to serve a request.",
                "s",
                quantile_queries(_HTTP_BUCKETS),
            ),
            timeseries_panel(
                "HTTP responses by status code",
                "Responses per second.",
                "reqps",
                [query(f"sum by (status_code) ({_HTTP})", "{{status_code}}")],
            ),
            timeseries_panel(
                "DB connections by pool",
                "Connections checked out of each pool.",
                "short",
                [query(f"sum by (database, pool) ({_DB_CONNECTIONS})", "{{database}} / {{pool}}")],
            ),
            timeseries_panel(
                "DB query p95 by operation",
                "p95 time to run one query.",
                "s",
                [
                    query(
                        f"histogram_quantile(0.95, sum by (operation, le) ({_DB_BUCKETS}))",
                        "{{operation}}",
                    )
                ],
            ),
            timeseries_panel(
                "Task dependency resolution",
                "p50 and p95 time to resolve a task's dependencies.",
                "s",
                quantile_queries(rate_expr("task_dependency_resolution_duration_seconds_bucket")),
            ),
        ],
    )


def metricgate_health() -> dash.Dashboard:
    """The gateway's own telemetry: points in and out, export queues, series, memory."""

    def rate_by(selector: str, by: str) -> str:
        return f"sum by ({by}) ({rate_expr(selector)})"

    return assemble_dashboard(
        "metricgate Health",
        "metricgate-health",
        "The gateway's own telemetry: points in and out, export queues, series, memory.",
        [label_variable("job", "metricgate_receiver_accepted_points_total")],
        [
            stat_panel(
                "Accepted points / s",
                "Points receivers accepted.",
                "short",
                query(f"sum({rate_expr(_ACCEPTED)})"),
            ),
            stat_panel(
                "Refused points / s",
                "Points receivers refused, any reason.",
                "short",
                query(f"sum({rate_expr(_REFUSED)})"),
            ),
            stat_panel(
                "Export failure ratio",
                "Failed / (sent + failed) points.",
                "percentunit",
                query(
                    f"sum({rate_expr(_FAILED)}) / "
                    f"(sum({rate_expr(_SENT)}) + sum({rate_expr(_FAILED)}))"
                ),
            ),
            stat_panel(
                "Resident memory",
                "Summed over gateway processes.",
                "bytes",
                query(f"sum({_MEMORY})"),
            ),
            timeseries_panel(
                "Accepted points by receiver",
                "Points per second.",
                "short",
                [
                    query(
                        rate_by(_ACCEPTED, "receiver"),
                        "{{receiver}}",
                    )
                ],
            ),
            timeseries_panel(
                "Refused points by receiver / reason",
                "Points per second.",
                "short",
                [
                    query(
                        rate_by(_REFUSED, "receiver, reason"),
                        "{{receiver}} / {{reason}}",
                    )
                ],
            ),
            timeseries_panel(
                "Sent points by exporter",
                "Points per second.",
                "short",
                [query(rate_by(_SENT, "exporter"), "{{exporter}}")],
            ),
            timeseries_panel(
                "Failed points by exporter",
                "Points per second that could not be sent.",
                "short",
                [query(rate_by(_FAILED, "exporter"), "{{exporter}}")],
            ),
            timeseries_panel(
                "Exporter queue fill",
                "Queue size / capacity.",
                "percentunit",
                [
                    query(
                        f"sum by (exporter) ({_QUEUE_SIZE}) / "
                        f"sum by (exporter) ({_QUEUE_CAPACITY})",
                        "{{exporter}}",
                    )
                ],
            ),
            timeseries_panel(
                "Active series by processor",
                "Series each processor tracks.",
                "short",
                [
                    query(
                        f"sum by (processor) ({_ACTIVE_SERIES})",
                        "{{processor}}",
                    )
                ],
            ),
            timeseries_panel(
                "Resident memory by instance",
                "Resident set size of each gateway.",
                "bytes",
                [query(f"sum by (instance) ({_MEMORY})", "{{instance}}")],
                width=24,
            ),
        ],
    )
