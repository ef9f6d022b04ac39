"""An in-process gateway for the pushgateway receiver tests: pushgateway in, Prometheus page out."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest

from metricgate.config import load_config_text
from metricgate.exporters.prometheus import PrometheusExporter
from metricgate.pipeline.service import Service
from metricgate.receivers.pushgateway import PushgatewayReceiver
from tests.support.capture import CaptureExporter, registry_with_capture
from tests.support.poll import wait_until

CONFIG = """
receivers:
  pushgateway: {endpoint: "127.0.0.1:0", max_request_body_size: 64KiB}
exporters:
  capture: {}
  prometheus: {endpoint: "127.0.0.1:0", metric_expiration: 1h}
service:
  pipelines:
    metrics: {receivers: [pushgateway], exporters: [capture, prometheus]}
  telemetry:
    metrics: {address: ""}
"""


@dataclass
class Gateway:
    service: Service
    receiver: PushgatewayReceiver
    capture: CaptureExporter
    exporter: PrometheusExporter

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.receiver.port}"

    async def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, str]:
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                method, f"http://{self.address}{path}", data=body, headers=headers
            ) as reply,
        ):
            return reply.status, await reply.text()

    async def page(self, present: str = "", absent: str = "") -> str:
        """The exporter's page once it shows `present` and not `absent`."""
        text = [""]

        async def fetch() -> None:
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"http://127.0.0.1:{self.exporter.port}/metrics") as reply,
            ):
                text[0] = await reply.text()

        await wait_until(
            lambda: present in text[0] and (not absent or absent not in text[0]), fetch, 5
        )
        return text[0]


@pytest.fixture
async def gateway() -> AsyncIterator[Gateway]:
    config = load_config_text(CONFIG, registry_with_capture(), {})
    service = Service(config)
    await service.start()
    try:
        receiver = service.receivers["pushgateway"]
        assert isinstance(receiver, PushgatewayReceiver)
        exporter = service.exporter_queues["prometheus"].exporter
        assert isinstance(exporter, PrometheusExporter)
        yield Gateway(service, receiver, CaptureExporter.instances["capture"], exporter)
    finally:
        await service.shutdown(time.monotonic() + 5)
