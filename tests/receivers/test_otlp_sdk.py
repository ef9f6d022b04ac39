"""The real OpenTelemetry SDK exporters (gRPC and HTTP) -> otlp receiver -> capture exporter."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
    OTLPMetricExporter as GrpcExporter,
)
from opentelemetry.exporter.otlp.proto.http import Compression as HttpCompression
from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
    OTLPMetricExporter as HttpExporter,
)
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    InMemoryMetricReader,
    MetricExporter,
    MetricExportResult,
)
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource

from metricgate.model import (
    ExponentialHistogramPoint,
    HistogramPoint,
    MetricKind,
    MetricPoints,
    Temporality,
)
from tests.receivers.otlp_gateway import Gateway, running
from tests.support.batches import number_batch


def record_and_export(exporter: MetricExporter) -> None:
    """Counters, an up-down counter, histograms and an observable gauge, exported once."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(
        resource=Resource.create({"service.name": "shop", "service.instance.id": "pod-1"}),
        metric_readers=[reader],
        views=[
            View(
                instrument_name="payload.size",
                aggregation=ExponentialBucketHistogramAggregation(max_size=20),
            )
        ],
    )
    meter = provider.get_meter("shop.meter", "1.2.3")
    requests = meter.create_counter("requests", unit="1", description="requests served")
    requests.add(5, {"route": "/a"})
    requests.add(2, {"route": "/b"})
    requests.add(1, {"route": "/a"})
    meter.create_up_down_counter("inflight").add(-2, {"queue": "q1"})
    latency = meter.create_histogram("latency", unit="s")
    latency.record(0.3, {"route": "/a"})
    latency.record(7.0, {"route": "/a"})
    size = meter.create_histogram("payload.size", unit="By")
    for value in (1, 2, 4, 1000):
        size.record(value)

    def temperature(options: CallbackOptions) -> list[Observation]:
        return [Observation(21.5, {"room": "a"}), Observation(-3.25, {"room": "b"})]

    meter.create_observable_gauge("temperature", callbacks=[temperature], unit="Cel")
    data = reader.get_metrics_data()
    assert data is not None
    assert exporter.export(data) is MetricExportResult.SUCCESS
    exporter.shutdown()
    provider.shutdown()


def groups_by_name(gateway: Gateway) -> dict[str, MetricPoints]:
    found: dict[str, MetricPoints] = {}
    for batch in gateway.capture.batches:
        for group in batch:
            assert group.metric.name not in found, "one export, one group per metric"
            found[group.metric.name] = group
    return found


def by_attributes(group: MetricPoints) -> dict[tuple[tuple[str, object], ...], object]:
    return {s.attributes: v for s, v in zip(group.series, group.values, strict=True)}


EXPORTERS: dict[str, Callable[[Gateway], MetricExporter]] = {
    "grpc": lambda g: GrpcExporter(endpoint=g.grpc_target, insecure=True, timeout=10),
    "grpc-gzip": lambda g: GrpcExporter(
        endpoint=g.grpc_target, insecure=True, compression=grpc.Compression.Gzip, timeout=10
    ),
    "http": lambda g: HttpExporter(endpoint=g.http_url, timeout=10),
    "http-gzip": lambda g: HttpExporter(
        endpoint=g.http_url, compression=HttpCompression.Gzip, timeout=10
    ),
}


@pytest.mark.parametrize("client", sorted(EXPORTERS))
async def test_sdk_exporters_deliver_every_instrument(client: str) -> None:
    async with running() as gateway:
        await asyncio.to_thread(record_and_export, EXPORTERS[client](gateway))
        await gateway.wait_for(lambda: len(gateway.capture.batches) >= 1)
        groups = groups_by_name(gateway)
        assert sorted(groups) == ["inflight", "latency", "payload.size", "requests", "temperature"]

        requests = groups["requests"]
        metric = requests.metric
        assert (metric.kind, metric.temporality, metric.monotonic) == (
            MetricKind.SUM,
            Temporality.CUMULATIVE,
            True,
        )
        assert (metric.unit, metric.description) == ("1", "requests served")
        assert (metric.scope.name, metric.scope.version) == ("shop.meter", "1.2.3")
        assert metric.resource.get("service.name") == "shop"
        assert metric.resource.get("service.instance.id") == "pod-1"
        assert metric.resource.get("telemetry.sdk.language") == "python"
        assert by_attributes(requests) == {(("route", "/a"),): 6.0, (("route", "/b"),): 2.0}
        assert all(
            t > s > 0 for t, s in zip(requests.timestamps, requests.start_timestamps, strict=True)
        )

        inflight = groups["inflight"]
        assert inflight.metric.kind is MetricKind.SUM and not inflight.metric.monotonic
        assert by_attributes(inflight) == {(("queue", "q1"),): -2.0}

        latency = groups["latency"]
        assert latency.metric.kind is MetricKind.HISTOGRAM
        assert latency.metric.temporality is Temporality.CUMULATIVE
        (point,) = latency.values
        assert isinstance(point, HistogramPoint)
        assert (point.count, point.sum, point.min, point.max) == (2, 7.3, 0.3, 7.0)
        assert point.bounds[:4] == (0.0, 5.0, 10.0, 25.0)
        assert len(point.bucket_counts) == len(point.bounds) + 1
        assert point.bucket_counts[1] == 1 and point.bucket_counts[2] == 1

        (size,) = groups["payload.size"].values
        assert isinstance(size, ExponentialHistogramPoint)
        assert size.count == 4 and size.sum == 1007
        assert size.zero_count + sum(size.positive.counts) == 4

        temperature = groups["temperature"]
        assert temperature.metric.kind is MetricKind.GAUGE
        assert temperature.metric.unit == "Cel"
        assert by_attributes(temperature) == {(("room", "a"),): 21.5, (("room", "b"),): -3.25}

        transport = client.split("-")[0]
        assert (
            gateway.counter("metricgate_receiver_accepted_points_total", transport=transport) == 7
        )
        code = "OK" if transport == "grpc" else "200"
        assert (
            gateway.counter("metricgate_receiver_requests_total", transport=transport, code=code)
            == 1
        )


@pytest.mark.parametrize("client", ["grpc", "http"])
async def test_sdk_retries_after_back_pressure(client: str) -> None:
    """A full queue refuses with a retry delay; the SDK waits as told and gets through."""
    async with running(queue_size=1) as gateway:
        capture = gateway.capture
        release = gateway.hold_exports()
        queue = gateway.service.exporter_queues["capture"]
        queue.enqueue(number_batch({"a": 1.0}))  # the only worker waits on this one
        await gateway.wait_for(lambda: queue.size == 0)
        queue.enqueue(number_batch({"b": 1.0}))  # and this one fills the queue
        sdk = asyncio.create_task(asyncio.to_thread(record_and_export, EXPORTERS[client](gateway)))
        refused = {"transport": client, "reason": "queue_full"}
        await gateway.wait_for(
            lambda: gateway.counter("metricgate_receiver_refused_points_total", **refused) >= 7
        )
        release.set()
        await sdk  # the SDK retried after the delay it was given, and succeeded
        assert gateway.counter("metricgate_receiver_accepted_points_total", transport=client) == 7
        await gateway.wait_for(lambda: len(capture.batches) == 3)
