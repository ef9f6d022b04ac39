"""metricgate's own metrics, served on the telemetry address (`:8888/metrics` by default).

Names follow `metricgate_<component kind>_<what>_<unit>`, labelled by component id, mirroring the
Collector's `otelcol_*` self-metrics. `SelfMetrics` holds the core instruments every receiver,
processor and exporter shares (points accepted, refused, dropped, sent); a component registers the
instruments it alone owns with `counter()`, `gauge()` and `histogram()`, from its own module, when
it starts. Registering is idempotent: the same call again (another instance of the component, a
restart) returns the same instrument; a call that differs in kind, help, labels or buckets raises
`TelemetryConflictError` naming both registrations, so one name never means two things.

Counters are bumped once per batch, never per point, so own telemetry costs nothing measurable on
the hot path. prometheus_client renders this small registry; it is far too slow for the data path
and is never used there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from metricgate import __version__
from metricgate.errors import TelemetryConflictError

__all__ = ["DEFAULT_BUCKETS", "Counter", "Gauge", "Histogram", "Reading", "SelfMetrics"]

Reading = Callable[[], Mapping[tuple[str, ...], float]]
"""A gauge's values at scrape time: label values (in label order) -> value."""

DEFAULT_BUCKETS: Final = Histogram.DEFAULT_BUCKETS


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


class Gauge:
    """A gauge family read at scrape time from the readers components `observe` on it.

    Several components may observe one family (each reports its own label values, e.g. its
    component id); the page shows their union.
    """

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str]) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._readers: list[Reading] = []

    def observe(self, read: Reading) -> Callable[[], None]:
        """Add `read` to the family; the returned function removes it (call it on shutdown, so a
        stopped component stops reporting)."""
        self._readers.append(read)

        def forget() -> None:
            if read in self._readers:
                self._readers.remove(read)

        return forget

    def family(self) -> GaugeMetricFamily:
        """The family with every reader's current values. For the same label values the latest
        reader wins: during a hot reload a rebuilt component reports beside its predecessor
        until the predecessor stops."""
        family = GaugeMetricFamily(self.name, self.documentation, labels=self.labelnames)
        rows: dict[tuple[str, ...], float] = {}
        for read in list(self._readers):
            rows.update(read())
        for label_values, value in rows.items():
            family.add_metric(list(label_values), value)
        return family


class _Gauges(Collector):
    """Every `Gauge` of one registry, rendered in registration order."""

    def __init__(self) -> None:
        self.gauges: list[Gauge] = []

    def collect(self) -> list[GaugeMetricFamily]:
        return [gauge.family() for gauge in self.gauges]

    def describe(self) -> list[GaugeMetricFamily]:
        return []


Instrument = Counter | Histogram | Gauge
_Signature = tuple[str, str, tuple[str, ...], tuple[float, ...]]
"""kind, help, label names, buckets: what two registrations of one name must agree on."""


class SelfMetrics:
    """The registry of one running gateway: the instruments shared by every component, and the
    registration API (`counter`, `gauge`, `histogram`) for the ones a component owns."""

    def __init__(self) -> None:
        self.registry = _NoCreatedRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        self._gauges = _Gauges()
        self.registry.register(self._gauges)
        self._registered: dict[str, tuple[_Signature, Instrument]] = {}
        self.gauge("metricgate_build_info", "metricgate version; always 1.", ["version"]).observe(
            lambda: {(__version__,): 1.0}
        )
        self._reload: dict[str, float] = {"successful": 0.0, "timestamp": 0.0}
        self.gauge(
            "metricgate_config_last_reload_successful",
            "Whether the last config load (start or reload) succeeded: 1, or 0 until one does.",
        ).observe(lambda: {(): self._reload["successful"]})
        self.gauge(
            "metricgate_config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful config load (start or reload).",
        ).observe(lambda: {(): self._reload["timestamp"]})
        self.receiver_accepted = self.counter(
            "metricgate_receiver_accepted_points",
            "Data points accepted by a receiver and handed to its pipelines.",
            ["receiver", "transport"],
        )
        self.receiver_refused = self.counter(
            "metricgate_receiver_refused_points",
            "Data points a receiver refused, by reason; the client was told.",
            ["receiver", "transport", "reason"],
        )
        self.receiver_requests = self.counter(
            "metricgate_receiver_requests",
            "Requests a receiver answered, by protocol status code.",
            ["receiver", "transport", "code"],
        )
        self.processor_dropped = self.counter(
            "metricgate_processor_dropped_points",
            "Data points a processor dropped on purpose, by reason.",
            ["processor", "reason"],
        )
        self.processor_outgoing = self.counter(
            "metricgate_processor_outgoing_points",
            "Data points a processor handed to the next stage of a pipeline (counted per batch).",
            ["processor", "pipeline"],
        )
        self.exporter_sent = self.counter(
            "metricgate_exporter_sent_points",
            "Data points an exporter's backend accepted (counted on its answer).",
            ["exporter"],
        )
        self.exporter_send_failed = self.counter(
            "metricgate_exporter_send_failed_points",
            "Data points an exporter did not deliver, by reason (permanent, retries_exhausted, "
            "shutdown, queue_*).",
            ["exporter", "reason"],
        )
        self.exporter_enqueue_failed = self.counter(
            "metricgate_exporter_enqueue_failed_points",
            "Data points refused because the exporter's queue was full.",
            ["exporter"],
        )
        self.exporter_retries = self.counter(
            "metricgate_exporter_retries",
            "Delivery attempts an exporter retried after a retryable error.",
            ["exporter"],
        )
        self.exporter_dropped = self.counter(
            "metricgate_exporter_dropped_points",
            "Data points an exporter could not represent for its backend, by reason.",
            ["exporter", "reason"],
        )
        self.exporter_queue_dropped = self.counter(
            "metricgate_exporter_queue_dropped_records",
            "Records an exporter's persistent sending queue dropped, by reason "
            "(queue_full, corrupt, truncated, decode).",
            ["exporter", "reason"],
        )
        self.processor_active_streams = self.gauge(
            "metricgate_processor_active_streams",
            "Series a stateful processor currently keeps state for.",
            ["processor"],
        )
        self.exporter_active_series = self.gauge(
            "metricgate_exporter_active_series",
            "Series an exporter currently holds (for `prometheus`: on its scrape page).",
            ["exporter"],
        )
        self.auth_failures = self.counter(
            "metricgate_auth_failures",
            "Requests an authenticator refused (missing, invalid or expired credentials, or too "
            "many failures from one address), per authenticator.",
            ["authenticator"],
        )
        self.tenant_refused_requests = self.counter(
            "metricgate_tenant_refused_requests",
            "Requests of an authenticated principal a listener refused, per tenant and reason "
            "(permission_denied, rate_limited, connection_limit, too_large; tenant is empty when "
            "the principal's tenant could not be resolved).",
            ["listener", "tenant", "reason"],
        )
        self.tenant_accepted_points = self.counter(
            "metricgate_tenant_accepted_points",
            "Data points of a tenant a receiver handed to its pipelines.",
            ["receiver", "tenant"],
        )
        self.tenant_refused_points = self.counter(
            "metricgate_tenant_refused_points",
            "Data points of a tenant a receiver refused, by reason (metric_not_allowed, "
            "rate_limited, permanent: over the burst, and the pipelines' reasons).",
            ["receiver", "tenant", "reason"],
        )
        self.tenant_forged_series = self.counter(
            "metricgate_tenant_forged_series",
            "Series that arrived with another tenant in their tenant label or resource "
            "attribute (the gateway replaced it with the sender's), counted when first seen.",
            ["receiver", "tenant"],
        )

    def config_reloaded(self, at: float) -> None:
        """A config was loaded and applied at Unix time `at` (the start, or a reload)."""
        self._reload.update(successful=1.0, timestamp=at)

    def config_reload_failed(self) -> None:
        self._reload["successful"] = 0.0

    def counter(self, name: str, documentation: str, labelnames: Sequence[str] = ()) -> Counter:
        """The counter `name` (exposed as `<name>_total`), registered on first call."""
        found = self._register(
            ("counter", documentation, tuple(labelnames), ()),
            name.removesuffix("_total"),
            lambda: Counter(name, documentation, labelnames, registry=self.registry),
        )
        assert isinstance(found, Counter)
        return found

    def histogram(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> Histogram:
        """The histogram `name` with `buckets` (upper bounds), registered on first call."""
        bounds = tuple(float(b) for b in buckets)
        found = self._register(
            ("histogram", documentation, tuple(labelnames), bounds),
            name,
            lambda: Histogram(
                name, documentation, labelnames, buckets=bounds, registry=self.registry
            ),
        )
        assert isinstance(found, Histogram)
        return found

    def gauge(self, name: str, documentation: str, labelnames: Sequence[str] = ()) -> Gauge:
        """The gauge family `name`, registered on first call; its values come from the readers
        components `observe` on it."""

        def create() -> Gauge:
            gauge = Gauge(name, documentation, labelnames)
            self._gauges.gauges.append(gauge)
            return gauge

        found = self._register(("gauge", documentation, tuple(labelnames), ()), name, create)
        assert isinstance(found, Gauge)
        return found

    def labelnames(self) -> dict[str, tuple[str, ...]]:
        """Every registered family's name (a counter's without `_total`) -> its label names."""
        return {name: signature[2] for name, (signature, _) in self._registered.items()}

    def _register(
        self, signature: _Signature, name: str, create: Callable[[], Instrument]
    ) -> Instrument:
        found = self._registered.get(name)
        if found is None:
            instrument = create()
            self._registered[name] = (signature, instrument)
            return instrument
        if found[0] != signature:
            raise TelemetryConflictError(name, _describe(found[0]), _describe(signature))
        return found[1]


def _describe(signature: _Signature) -> str:
    kind, documentation, labelnames, buckets = signature
    text = f"{kind} with labels {list(labelnames)} and help {documentation!r}"
    return f"{text} and buckets {list(buckets)}" if buckets else text
