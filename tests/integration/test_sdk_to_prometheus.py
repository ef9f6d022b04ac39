"""End to end: the real OpenTelemetry SDK -> metricgate (subprocess) -> scrape page / Prometheus.

The SDK's own OTLP exporters (gRPC and HTTP) are the clients; the outcome is read the way users
read it: the scrape page parsed as Prometheus text, `promtool check metrics`, and PromQL over a real
Prometheus server's HTTP API.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
    OTLPMetricExporter as GrpcExporter,
)
from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
    OTLPMetricExporter as HttpExporter,
)
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    MeterProvider,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import AggregationTemporality, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import (
    ExplicitBucketHistogramAggregation,
    ExponentialBucketHistogramAggregation,
    View,
)
from opentelemetry.sdk.resources import Resource
from prometheus_client.parser import text_string_to_metric_families

from tests.support.binaries import require_binary
from tests.support.gateway import Gateway, run_gateway
from tests.support.poll import block_until
from tests.support.prometheus import run_prometheus

pytestmark = pytest.mark.integration

SHOP = {
    "service.name": "checkout",
    "service.namespace": "shop",
    "service.instance.id": "pod-1",
    "deployment.environment": "test",
}
WORKER = {"service.name": "worker", "service.instance.id": "w-1"}
SCOPE = {"otel_scope_name": "shop", "otel_scope_version": "1.2.3"}
SHOP_LABELS = {"job": "shop/checkout", "instance": "pod-1", **SCOPE}
WORKER_LABELS = {"job": "worker", "instance": "w-1", **SCOPE}

DELTA = {
    Counter: AggregationTemporality.DELTA,
    UpDownCounter: AggregationTemporality.CUMULATIVE,
    Histogram: AggregationTemporality.DELTA,
    ObservableCounter: AggregationTemporality.DELTA,
    ObservableUpDownCounter: AggregationTemporality.CUMULATIVE,
    ObservableGauge: AggregationTemporality.CUMULATIVE,
}


def provider(exporter: object, resource: dict[str, str]) -> MeterProvider:
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)  # type: ignore[arg-type]
    return MeterProvider(
        resource=Resource.create(resource),
        metric_readers=[reader],
        views=[
            View(
                instrument_name="shop.latency",
                aggregation=ExplicitBucketHistogramAggregation([0.1, 0.5, 1.0]),
            ),
            View(
                instrument_name="shop.payload.size",
                aggregation=ExponentialBucketHistogramAggregation(max_size=20),
            ),
            View(
                instrument_name="jobs.duration",
                aggregation=ExplicitBucketHistogramAggregation([1.0, 2.0, 5.0]),
            ),
        ],
    )


def record_shop(gateway: Gateway, orders_card: float = 3) -> MeterProvider:
    """Cumulative temporality over gRPC: counter, up-down counter, histograms, gauge."""
    exporter = GrpcExporter(endpoint=f"127.0.0.1:{gateway.ports['grpc']}", insecure=True)
    mp = provider(exporter, SHOP)
    meter = mp.get_meter("shop", "1.2.3")
    orders = meter.create_counter("shop.orders", unit="{order}", description="Orders placed.")
    orders.add(orders_card, {"payment": "card"})
    orders.add(2, {"payment": "cash"})
    orders.add(4, {"payment": "card"})
    queue = meter.create_up_down_counter("shop.queue.size", unit="{item}")
    queue.add(10)
    queue.add(-3)
    latency = meter.create_histogram("shop.latency", unit="s", description="Checkout latency.")
    for value in (0.05, 0.3, 0.7, 2.0):
        latency.record(value, {"route": "/pay"})
    payload = meter.create_histogram("shop.payload.size", unit="By")
    for value in (100, 200, 300):
        payload.record(value)

    def temperature(_: CallbackOptions) -> list[Observation]:
        return [Observation(21.5, {"room": "server"})]

    meter.create_observable_gauge("shop.temperature", [temperature], unit="Cel")
    assert mp.force_flush(10_000)
    return mp


def record_worker(gateway: Gateway) -> MeterProvider:
    """Delta temporality over HTTP: two exports of a counter and a histogram."""
    exporter = HttpExporter(
        endpoint=f"http://127.0.0.1:{gateway.ports['http']}/v1/metrics",
        preferred_temporality=DELTA,  # type: ignore[arg-type]
    )
    mp = provider(exporter, WORKER)
    meter = mp.get_meter("shop", "1.2.3")
    processed = meter.create_counter("jobs.processed", unit="{job}")
    duration = meter.create_histogram("jobs.duration", unit="s")
    processed.add(5, {"queue": "emails"})
    duration.record(1.5, {"queue": "emails"})
    assert mp.force_flush(10_000)
    processed.add(7, {"queue": "emails"})
    duration.record(3.0, {"queue": "emails"})
    assert mp.force_flush(10_000)
    return mp


def samples(page: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in text_string_to_metric_families(page):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def key(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return (name, frozenset(labels.items()))


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with run_gateway(tmp_path_factory.mktemp("gw")) as gw:
        providers = [record_shop(gw), record_worker(gw)]
        yield gw
        for mp in providers:
            mp.shutdown()


def wait_page(gateway: Gateway, needle: str) -> str:
    return block_until(
        lambda: (page := gateway.scrape()) and needle in page and page, what=needle, interval=0.05
    )


def test_counters_gauges_and_up_down_counters(gateway: Gateway) -> None:
    found = samples(wait_page(gateway, "shop_temperature_celsius"))
    assert found[key("shop_orders_total", **SHOP_LABELS, payment="card")] == 7
    assert found[key("shop_orders_total", **SHOP_LABELS, payment="cash")] == 2
    assert found[key("shop_queue_size", **SHOP_LABELS)] == 7
    assert found[key("shop_temperature_celsius", **SHOP_LABELS, room="server")] == 21.5


def test_explicit_bucket_histogram(gateway: Gateway) -> None:
    found = samples(wait_page(gateway, "shop_latency_seconds_bucket"))
    labels = {**SHOP_LABELS, "route": "/pay"}
    buckets = {
        le: found[key("shop_latency_seconds_bucket", **labels, le=le)]
        for le in ("0.1", "0.5", "1", "+Inf")
    }
    assert buckets == {"0.1": 1, "0.5": 2, "1": 3, "+Inf": 4}
    assert found[key("shop_latency_seconds_count", **labels)] == 4
    assert found[key("shop_latency_seconds_sum", **labels)] == pytest.approx(3.05)


def test_exponential_histogram_as_explicit_buckets(gateway: Gateway) -> None:
    found = samples(wait_page(gateway, "shop_payload_size_bytes"))
    assert found[key("shop_payload_size_bytes_count", **SHOP_LABELS)] == 3
    assert found[key("shop_payload_size_bytes_sum", **SHOP_LABELS)] == 600
    buckets = sorted(
        (float(dict(labels)["le"]), value)
        for (name, labels), value in found.items()
        if name == "shop_payload_size_bytes_bucket"
    )
    assert buckets[-1] == (float("inf"), 3)
    # every recorded value lies at or below the first bound whose cumulative count reaches it
    counts = [value for _, value in buckets]
    assert counts == sorted(counts)
    for recorded, rank in ((100, 1), (200, 2), (300, 3)):
        first = next(bound for bound, count in buckets if count >= rank)
        assert recorded <= first < recorded * 1.1


def test_delta_temporality_is_accumulated(gateway: Gateway) -> None:
    found = samples(wait_page(gateway, "jobs_processed_total"))
    labels = {**WORKER_LABELS, "queue": "emails"}
    assert found[key("jobs_processed_total", **labels)] == 12
    assert found[key("jobs_duration_seconds_count", **labels)] == 2
    assert found[key("jobs_duration_seconds_sum", **labels)] == 4.5
    assert found[key("jobs_duration_seconds_bucket", **labels, le="2")] == 1
    assert found[key("jobs_duration_seconds_bucket", **labels, le="5")] == 2


def test_target_info_carries_the_other_resource_attributes(gateway: Gateway) -> None:
    found = samples(wait_page(gateway, "target_info"))
    infos = {
        frozenset(labels): value for (name, labels), value in found.items() if name == "target_info"
    }
    shop = next(dict(labels) for labels in infos if dict(labels).get("job") == "shop/checkout")
    assert shop["instance"] == "pod-1"
    assert shop["deployment_environment"] == "test"
    assert shop["telemetry_sdk_language"] == "python"
    assert "service_name" not in shop
    assert all(value == 1 for value in infos.values())


def test_promtool_accepts_the_page(gateway: Gateway) -> None:
    page = wait_page(gateway, "jobs_processed_total")
    promtool = require_binary("promtool")
    result = subprocess.run(
        [promtool, "check", "metrics"], input=page, capture_output=True, text=True, timeout=60
    )
    # exit 1 would be a parse error; lints (exit 3) are listed and must all be justified
    assert result.returncode in (0, 3), result.stdout + result.stderr
    lints = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    allowed = ("no help text",)  # metrics the SDK sent without a description
    unexpected = [line for line in lints if not any(a in line for a in allowed)]
    assert unexpected == [], lints


def test_openmetrics_negotiation(gateway: Gateway) -> None:
    response = requests.get(
        gateway.url("prometheus", "/metrics"),
        headers={"Accept": "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"},
        timeout=10,
    )
    assert response.headers["Content-Type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")
    plain = requests.get(gateway.url("prometheus", "/metrics"), timeout=10)
    assert plain.headers["Content-Type"].startswith("text/plain; version=0.0.4")


def test_real_prometheus_scrapes_and_answers_promql(gateway: Gateway, tmp_path: Path) -> None:
    target = f"127.0.0.1:{gateway.ports['prometheus']}"
    with run_prometheus(tmp_path, [target]) as prometheus:
        result = prometheus.wait_for('sum(shop_orders_total{job="shop/checkout"})')
        assert float(result[0]["value"][1]) == 9
        info = prometheus.wait_for('target_info{job="shop/checkout"}')
        assert info[0]["metric"]["deployment_environment"] == "test"
        p50 = prometheus.wait_for(
            "histogram_quantile(0.5, sum by (le) (shop_latency_seconds_bucket))"
        )
        # 2 of 4 observations are <= 0.5: the median interpolates to the 0.5 bucket's upper edge
        assert float(p50[0]["value"][1]) == pytest.approx(0.5)
        # more orders arrive; rate() over two scrapes sees them
        more = record_shop(gateway, orders_card=103)  # a new SDK: cumulative restarts at 107
        try:
            rate = prometheus.wait_for(
                'sum(rate(shop_orders_total{payment="card"}[10s])) > 0', timeout=20
            )
            assert float(rate[0]["value"][1]) > 0
            total = prometheus.wait_for('sum(shop_orders_total{payment="card"}) == 107')
            assert float(total[0]["value"][1]) == 107
        finally:
            more.shutdown()
