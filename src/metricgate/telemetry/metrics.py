"""metricgate's own metrics, served on the telemetry address (`:8888/metrics` by default).

Names follow `metricgate_<component kind>_<what>_<unit>`, labelled by component id, mirroring the
Collector's `otelcol_*` self-metrics. Counters are bumped once per batch, never per point, so own
telemetry costs nothing measurable on the hot path. prometheus_client renders this small registry;
it is far too slow for the data path and is never used there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    ProcessCollector,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from metricgate import __version__


class _NoCreatedRegistry(CollectorRegistry):
    """A registry whose page has no `<name>_created` series (prometheus_client adds one to every
    counter and histogram; the Collector has none, and they double the page). Filtered here
    rather than with prometheus_client's process-wide switch, which would also change the
    metrics of any other prometheus_client user in the process."""

    def collect(self) -> Iterator[Metric]:
        for family in super().collect():
            if family.type != "gauge":
                created = family.name + "_created"
                family.samples = [s for s in family.samples if s.name != created]
            yield family


class SelfMetrics:
    """The registry and instruments of one running gateway."""

    def __init__(self) -> None:
        self.registry = _NoCreatedRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        build = Gauge(
            "metricgate_build_info",
            "metricgate version; always 1.",
            ["version"],
            registry=self.registry,
        )
        build.labels(__version__).set(1)
        r = self.registry
        self.receiver_accepted = Counter(
            "metricgate_receiver_accepted_points",
            "Data points accepted by a receiver and handed to its pipelines.",
            ["receiver", "transport"],
            registry=r,
        )
        self.receiver_refused = Counter(
            "metricgate_receiver_refused_points",
            "Data points a receiver refused, by reason; the client was told.",
            ["receiver", "transport", "reason"],
            registry=r,
        )
        self.receiver_requests = Counter(
            "metricgate_receiver_requests",
            "Requests a receiver answered, by protocol status code.",
            ["receiver", "transport", "code"],
            registry=r,
        )
        self.processor_dropped = Counter(
            "metricgate_processor_dropped_points",
            "Data points a processor dropped on purpose, by reason.",
            ["processor", "reason"],
            registry=r,
        )
        self.processor_outgoing = Counter(
            "metricgate_processor_outgoing_points",
            "Data points a processor handed to the next stage of a pipeline (counted per batch).",
            ["processor", "pipeline"],
            registry=r,
        )
        self.processor_routed = Counter(
            "metricgate_processor_routed_points",
            "Data points a routing processor handed to a route's exporters (route: table[i] or "
            "default).",
            ["processor", "route"],
            registry=r,
        )
        self.cardinality_refused_series = Counter(
            "metricgate_cardinality_refused_series",
            "New series a cardinality limiter refused (folded or dropped), by metric and cap.",
            ["processor", "metric", "reason"],
            registry=r,
        )
        self.cardinality_tenant_refused_points = Counter(
            "metricgate_cardinality_tenant_refused_points",
            "Data points of series a cardinality limiter refused, by tenant (its own budget).",
            ["processor", "tenant"],
            registry=r,
        )
        self.cardinality_folded_points = Counter(
            "metricgate_cardinality_folded_points",
            "Data points of refused series folded into a metric's overflow series.",
            ["processor", "metric"],
            registry=r,
        )
        self.exporter_sent = Counter(
            "metricgate_exporter_sent_points",
            "Data points an exporter's backend accepted (counted on its answer).",
            ["exporter"],
            registry=r,
        )
        self.exporter_send_failed = Counter(
            "metricgate_exporter_send_failed_points",
            "Data points an exporter did not deliver, by reason (permanent, retries_exhausted, "
            "shutdown, queue_*).",
            ["exporter", "reason"],
            registry=r,
        )
        self.exporter_enqueue_failed = Counter(
            "metricgate_exporter_enqueue_failed_points",
            "Data points refused because the exporter's queue was full.",
            ["exporter"],
            registry=r,
        )
        self.exporter_retries = Counter(
            "metricgate_exporter_retries",
            "Delivery attempts an exporter retried after a retryable error.",
            ["exporter"],
            registry=r,
        )
        self.exporter_dropped = Counter(
            "metricgate_exporter_dropped_points",
            "Data points an exporter could not represent for its backend, by reason.",
            ["exporter", "reason"],
            registry=r,
        )
        self.exporter_queue_dropped = Counter(
            "metricgate_exporter_queue_dropped_records",
            "Records an exporter's persistent sending queue dropped, by reason "
            "(queue_full, corrupt, truncated, decode).",
            ["exporter", "reason"],
            registry=r,
        )
        self.scrapes = Counter(
            "metricgate_receiver_scrapes",
            "Scrapes a prometheus receiver made, per job.",
            ["receiver", "job"],
            registry=r,
        )
        self.scrape_failures = Counter(
            "metricgate_receiver_scrape_failures",
            "Scrapes that failed, per job and reason (http_status, timeout, connection, "
            "body_size_limit, content_type, parse, sample_limit, label_limit, target_limit, "
            "pipeline).",
            ["receiver", "job", "reason"],
            registry=r,
        )
        self.discovery_refreshes = Counter(
            "metricgate_receiver_discovery_refreshes",
            "Service discovery refreshes of a prometheus receiver, per job and mechanism.",
            ["receiver", "job", "mechanism"],
            registry=r,
        )
        self.discovery_failures = Counter(
            "metricgate_receiver_discovery_failures",
            "Service discovery refreshes that failed (the last targets were kept).",
            ["receiver", "job", "mechanism"],
            registry=r,
        )
        self.auth_failures = Counter(
            "metricgate_auth_failures",
            "Requests an authenticator refused (missing, invalid or expired credentials, or too "
            "many failures from one address), per authenticator.",
            ["authenticator"],
            registry=r,
        )
        self.tenant_refused_requests = Counter(
            "metricgate_tenant_refused_requests",
            "Requests of an authenticated principal a listener refused, per tenant and reason "
            "(permission_denied, rate_limited, connection_limit, too_large; tenant is empty when "
            "the principal's tenant could not be resolved).",
            ["listener", "tenant", "reason"],
            registry=r,
        )
        self.tenant_accepted_points = Counter(
            "metricgate_tenant_accepted_points",
            "Data points of a tenant a receiver handed to its pipelines.",
            ["receiver", "tenant"],
            registry=r,
        )
        self.tenant_refused_points = Counter(
            "metricgate_tenant_refused_points",
            "Data points of a tenant a receiver refused, by reason (metric_not_allowed, "
            "rate_limited, permanent: over the burst, and the pipelines' reasons).",
            ["receiver", "tenant", "reason"],
            registry=r,
        )
        self.tenant_forged_series = Counter(
            "metricgate_tenant_forged_series",
            "Series that arrived with another tenant in their tenant label or resource "
            "attribute (the gateway replaced it with the sender's), counted when first seen.",
            ["receiver", "tenant"],
            registry=r,
        )
        self._gauges: list[
            tuple[str, str, list[str], Callable[[], dict[tuple[str, ...], float]]]
        ] = []
        self.registry.register(_CallbackCollector(self._gauges))

    def add_gauge(
        self,
        name: str,
        documentation: str,
        labelnames: list[str],
        read: Callable[[], dict[tuple[str, ...], float]],
    ) -> None:
        """A gauge family read at scrape time: `read()` maps label values to the current value."""
        self._gauges.append((name, documentation, labelnames, read))


class _CallbackCollector(Collector):
    def __init__(
        self, gauges: list[tuple[str, str, list[str], Callable[[], dict[tuple[str, ...], float]]]]
    ) -> None:
        self._gauges = gauges

    def collect(self) -> list[GaugeMetricFamily]:
        merged: dict[str, GaugeMetricFamily] = {}
        for name, documentation, labelnames, read in self._gauges:
            family = merged.get(name)
            if family is None:
                family = merged[name] = GaugeMetricFamily(name, documentation, labels=labelnames)
            for label_values, value in read().items():
                family.add_metric(list(label_values), value)
        return list(merged.values())

    def describe(self) -> list[GaugeMetricFamily]:
        return []
