"""End to end: OTel SDK -> metricgate Service (in-process) -> remote-write -> a real Prometheus
and a real VictoriaMetrics (each test runs against both).

Values are read back with PromQL instant queries: counters, gauges, histograms, delta input
turned cumulative, and a staleness marker after which the series is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource

from metricgate.components import BUILTIN_FACTORIES
from metricgate.config import load_config_text
from metricgate.exporters.prometheus_remote_write import RemoteWriteExporter
from metricgate.model import (
    FLAG_NO_RECORDED_VALUE,
    INTERNER,
    Batch,
    MetricKind,
    MetricPoints,
    SummaryPoint,
)
from metricgate.pipeline import Registry
from metricgate.pipeline.service import Service
from metricgate.receivers.otlp import OtlpReceiver
from tests.support.batches import metric, number_batch
from tests.support.poll import wait_until
from tests.support.prometheus import PrometheusServer

pytestmark = pytest.mark.integration

CONFIG = """
receivers:
  otlp:
    protocols:
      http: {{endpoint: "127.0.0.1:0"}}
exporters:
  prometheus_remote_write:
    endpoint: "http://127.0.0.1:{port}/api/v1/write"
    flush_interval: 10ms
    external_labels: {{cluster: test}}
service:
  pipelines:
    metrics: {{receivers: [otlp], exporters: [prometheus_remote_write]}}
  telemetry:
    metrics: {{address: ""}}
"""


@pytest.fixture(scope="module")
def prometheus(remote_write_backend: PrometheusServer) -> PrometheusServer:
    """The remote-write backend under test (Prometheus, then VictoriaMetrics)."""
    return remote_write_backend


@pytest.fixture
async def service(prometheus: PrometheusServer) -> AsyncIterator[Service]:
    config = load_config_text(CONFIG.format(port=prometheus.port), Registry(BUILTIN_FACTORIES), {})
    running = Service(config)
    await running.start()
    try:
        yield running
    finally:
        await running.shutdown(time.monotonic() + 10)


def provider(url: str, service_name: str, delta: bool) -> MeterProvider:
    temporality = AggregationTemporality.DELTA if delta else AggregationTemporality.CUMULATIVE
    exporter = OTLPMetricExporter(
        endpoint=url, preferred_temporality={Counter: temporality, Histogram: temporality}
    )
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    return MeterProvider(
        resource=Resource.create({"service.name": service_name, "service.instance.id": "i-1"}),
        metric_readers=[reader],
        views=[
            View(
                instrument_name="*latency",
                aggregation=ExplicitBucketHistogramAggregation([0.1, 0.5, 1.0]),
            )
        ],
    )


async def value(prometheus: PrometheusServer, expr: str) -> float:
    result = await asyncio.to_thread(prometheus.wait_for, expr, 20.0)
    assert len(result) == 1, result
    return float(result[0]["value"][1])


async def _shows(prometheus: PrometheusServer, expr: str, at: float, expected: float) -> None:
    """Wait until the instant query `expr` at time `at` is one series of value `expected`."""
    found: list[Any] = []

    async def look() -> None:
        found[:] = await asyncio.to_thread(prometheus.query, expr, at)

    def shown() -> bool:
        return [float(r["value"][1]) for r in found] == [expected]

    with contextlib.suppress(AssertionError):  # the assertion below shows what was found
        await wait_until(shown, look, 20, 0.2)
    assert shown(), (expr, at, found)


async def flush(mp: MeterProvider) -> None:
    assert await asyncio.to_thread(mp.force_flush, 10_000)


async def test_sdk_metrics_arrive_with_exact_values(
    service: Service, prometheus: PrometheusServer
) -> None:
    receiver = service.receivers["otlp"]
    assert isinstance(receiver, OtlpReceiver)
    url = f"http://127.0.0.1:{receiver.http_port}/v1/metrics"

    shop = provider(url, "shop", delta=False)
    meter = shop.get_meter("shop", "1.0")
    orders = meter.create_counter("shop.orders", unit="{order}")
    orders.add(3, {"payment": "card"})
    orders.add(4, {"payment": "card"})
    latency = meter.create_histogram("shop.latency", unit="s")
    for sample in (0.05, 0.3, 0.7, 2.0):
        latency.record(sample)

    def temperature(_: CallbackOptions) -> list[Observation]:
        return [Observation(21.5, {"room": "lab"})]

    meter.create_observable_gauge("shop.temperature", [temperature], unit="Cel")
    await flush(shop)

    worker = provider(url, "worker", delta=True)
    jobs = worker.get_meter("worker").create_counter("jobs.processed")
    job_latency = worker.get_meter("worker").create_histogram("jobs.latency", unit="s")
    jobs.add(5, {"queue": "mail"})
    job_latency.record(0.3)
    await flush(worker)
    jobs.add(7, {"queue": "mail"})
    job_latency.record(2.0)
    await flush(worker)

    labels = 'job="shop",instance="i-1",cluster="test"'
    assert await value(prometheus, f'shop_orders_total{{payment="card",{labels}}}') == 7
    assert await value(prometheus, f'shop_temperature_celsius{{room="lab",{labels}}}') == 21.5
    bucket = f'shop_latency_seconds_bucket{{le="0.5",{labels}}}'
    assert await value(prometheus, bucket) == 2
    inf_bucket = f'shop_latency_seconds_bucket{{le="+Inf",{labels}}}'
    assert await value(prometheus, inf_bucket) == 4
    assert await value(prometheus, f"shop_latency_seconds_count{{{labels}}}") == 4
    assert await value(prometheus, f"shop_latency_seconds_sum{{{labels}}}") == pytest.approx(3.05)
    assert await value(prometheus, 'target_info{job="shop"}') == 1
    # delta 5 + 7: wait for the second export to land, then check the cumulative total.
    total = [0.0]

    async def look() -> None:
        total[0] = await value(prometheus, 'jobs_processed_total{queue="mail"}')

    await wait_until(lambda: total[0] == 12, look, 20, 0.2)
    assert await value(prometheus, 'jobs_latency_seconds_bucket{le="0.5",job="worker"}') == 1
    assert await value(prometheus, 'jobs_latency_seconds_count{job="worker"}') == 2
    assert await value(prometheus, 'jobs_latency_seconds_sum{job="worker"}') == 2.3
    # The SDK exports once more on shutdown: off the event loop, which serves the receiver.
    await asyncio.to_thread(shop.shutdown)
    await asyncio.to_thread(worker.shutdown)


async def test_stale_marker_removes_the_series(
    service: Service, prometheus: PrometheusServer
) -> None:
    queue = service.exporter_queues["prometheus_remote_write"]
    assert isinstance(queue.exporter, RemoteWriteExporter)
    now = time.time_ns()
    live = number_batch({"x": 42.0}, name="door_open", kind=MetricKind.GAUGE, timestamp=now)
    await queue.consume(live)
    assert await value(prometheus, 'door_open{k="x"}') == 42
    gone = number_batch(
        {"x": 0.0}, name="door_open", kind=MetricKind.GAUGE, timestamp=now + 1_000_000_000
    )
    gone.metrics[0].flags[0] = FLAG_NO_RECORDED_VALUE
    gone.metrics[0].values[0] = float("nan")
    await queue.consume(gone)
    visible: list[Any] = [True]

    async def look() -> None:
        visible[:] = await asyncio.to_thread(prometheus.query, 'door_open{k="x"}', now / 1e9 + 2)

    await wait_until(lambda: not visible, look, 20, 0.2)  # gone after its StaleNaN
    # Just before the marker the value is still there: the marker ended it, nothing else did.
    before = await asyncio.to_thread(prometheus.query, 'door_open{k="x"}', now / 1e9 + 0.5)
    assert [float(r["value"][1]) for r in before] == [42.0]


async def test_summaries_arrive_as_quantile_sum_and_count_series(
    service: Service, prometheus: PrometheusServer
) -> None:
    queue = service.exporter_queues["prometheus_remote_write"]
    assert isinstance(queue.exporter, RemoteWriteExporter)
    m = metric("rpc.duration", kind=MetricKind.SUMMARY, unit="s", service="rpc")
    group = MetricPoints(m)
    point = SummaryPoint(count=10, sum=4.5, quantiles=((0.5, 0.3), (0.99, 1.2)))
    group.append(INTERNER.intern_series(m, (("method", "get"),)), point, time.time_ns())
    await queue.consume(Batch([group]))
    labels = 'job="rpc",method="get",cluster="test"'
    assert await value(prometheus, f'rpc_duration_seconds{{quantile="0.5",{labels}}}') == 0.3
    assert await value(prometheus, f'rpc_duration_seconds{{quantile="0.99",{labels}}}') == 1.2
    assert await value(prometheus, f"rpc_duration_seconds_sum{{{labels}}}") == 4.5
    assert await value(prometheus, f"rpc_duration_seconds_count{{{labels}}}") == 10


async def test_protocol_2_against_a_1_0_only_server_falls_back_and_loses_nothing(
    prometheus: PrometheusServer,
) -> None:
    # Prometheus 2.42 and VictoriaMetrics 1.79 take a 2.0 body as an empty 1.0 request (204, no
    # X-Prometheus-Remote-Write-Samples-Written, nothing stored): the exporter must notice.
    text = CONFIG.format(port=prometheus.port).replace(
        "    flush_interval: 10ms\n",
        "    flush_interval: 10ms\n    protobuf_message: io.prometheus.write.v2.Request\n",
    )
    running = Service(load_config_text(text, Registry(BUILTIN_FACTORIES), {}))
    await running.start()
    try:
        queue = running.exporter_queues["prometheus_remote_write"]
        exporter = queue.exporter
        assert isinstance(exporter, RemoteWriteExporter)
        start = time.time_ns() - 10_000_000_000
        for step in range(3):
            batch = number_batch(
                {"a": 1.0 + step, "b": 10.0 + step},
                name="v2_fallback",
                kind=MetricKind.GAUGE,
                timestamp=start + step * 1_000_000_000,
            )
            await queue.consume(batch)
        at = {step: start / 1e9 + step + 0.5 for step in range(3)}
        for step in range(3):  # every step, the first (sent as 2.0, then resent) included
            for key, base in (("a", 1.0), ("b", 10.0)):
                expr = f'v2_fallback{{k="{key}"}}'
                await _shows(prometheus, expr, at[step], base + step)
        assert exporter.client.protocol == "1.0"
    finally:
        await running.shutdown(time.monotonic() + 10)
