"""A stalled exporter must not stop its siblings: the scrape page keeps updating."""

from __future__ import annotations

import time

import aiohttp
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import Gauge, Metric, NumberDataPoint
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from prometheus_client.parser import text_string_to_metric_families

from metricgate.config import load_config_text
from metricgate.pipeline.service import Service
from tests.support.capture import CaptureExporter, registry_with_capture
from tests.support.poll import wait_until

CONFIG = """
receivers:
  otlp: {protocols: {http: {endpoint: "127.0.0.1:0"}}}
exporters:
  prometheus: {endpoint: "127.0.0.1:0"}
  capture/stalled: {delay_s: 3600, sending_queue: {queue_size: 1, num_consumers: 1}}
service:
  telemetry: {metrics: {address: ""}}
  pipelines:
    metrics: {receivers: [otlp], exporters: [prometheus, capture/stalled]}
"""


def gauge_request(value: float) -> bytes:
    request = ExportMetricsServiceRequest()
    rm = request.resource_metrics.add()
    rm.resource.CopyFrom(
        Resource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value="app"))])
    )
    metric = Metric(name="temperature", unit="Cel")
    metric.gauge.CopyFrom(
        Gauge(
            data_points=[NumberDataPoint(time_unix_nano=1_700_000_000_000_000_000, as_double=value)]
        )
    )
    rm.scope_metrics.add().metrics.append(metric)
    return request.SerializeToString()


async def test_scrape_page_keeps_updating_while_a_sibling_exporter_is_stalled() -> None:
    service = Service(load_config_text(CONFIG, registry_with_capture(), {}))
    await service.start()
    try:
        receiver = service.receivers["otlp"]
        exporter = service.exporter_queues["prometheus"].exporter
        ingest = f"http://127.0.0.1:{receiver.http_port}/v1/metrics"  # type: ignore[attr-defined]
        page_url = f"http://127.0.0.1:{exporter.port}/metrics"  # type: ignore[attr-defined]
        statuses = []
        async with aiohttp.ClientSession() as session:
            pages = [""]

            async def fetch() -> None:
                async with session.get(page_url) as response:
                    pages[0] = await response.text()

            def temperatures() -> list[float]:
                return [
                    sample.value
                    for family in text_string_to_metric_families(pages[0])
                    for sample in family.samples
                    if sample.name == "temperature_celsius"
                ]

            for value in range(1, 7):
                async with session.post(
                    ingest,
                    data=gauge_request(float(value)),
                    headers={"Content-Type": "application/x-protobuf"},
                ) as response:
                    statuses.append(response.status)
                    if response.status == 429:
                        assert int(response.headers["Retry-After"]) >= 1
                await wait_until(lambda v=float(value): temperatures() == [v], fetch, 5)
        # one batch in the stalled worker, one in its queue: the rest were refused for it
        assert statuses[:2] == [200, 200]
        assert set(statuses[2:]) == {429}
        assert CaptureExporter.instances["capture/stalled"].batches == []
    finally:
        await service.shutdown(time.monotonic() + 0.5)
