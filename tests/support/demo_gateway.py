"""An in-process gateway for the catalog demo tests: OTLP gRPC in, Prometheus page out."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import requests
from prometheus_client.parser import text_string_to_metric_families

from metricgate.config import load_config_text
from metricgate.exporters.prometheus import PrometheusExporter
from metricgate.pipeline.service import Service
from metricgate.receivers.otlp import OtlpReceiver
from tests.support.capture import registry_with_capture

CONFIG = """
receivers:
  otlp:
    protocols:
      grpc: {endpoint: "127.0.0.1:0"}
      http: {endpoint: "127.0.0.1:0"}
exporters:
  prometheus: {endpoint: "127.0.0.1:0"}
service:
  pipelines:
    metrics: {receivers: [otlp], exporters: [prometheus]}
  telemetry:
    metrics: {address: ""}
"""


class Gateway:
    """An in-process metricgate: OTLP in, Prometheus scrape page out."""

    def __init__(self, service: Service) -> None:
        self.service = service
        receiver = service.receivers["otlp"]
        exporter = service.exporter_queues["prometheus"].exporter
        assert isinstance(receiver, OtlpReceiver) and isinstance(exporter, PrometheusExporter)
        self.grpc = f"127.0.0.1:{receiver.grpc_port}"
        self.http = f"127.0.0.1:{receiver.http_port}"
        self.scrape_target = f"127.0.0.1:{exporter.port}"

    def scrape(self) -> dict[str, list[dict[str, str]]]:
        """Sample name -> label sets on the scrape page (blocking: call from a thread)."""
        text = requests.get(f"http://{self.scrape_target}/metrics", timeout=10).text
        samples: dict[str, list[dict[str, str]]] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples.setdefault(sample.name, []).append(sample.labels)
        return samples


@asynccontextmanager
async def gateway(config: str = CONFIG) -> AsyncIterator[Gateway]:
    service = Service(load_config_text(config, registry_with_capture(), {}))
    await service.start()
    try:
        yield Gateway(service)
    finally:
        await service.shutdown(time.monotonic() + 5)
