"""An in-process gateway for receiver tests: otlp (port 0) -> capture, in the test's loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from metricgate.config import load_config_text
from metricgate.model import Batch
from metricgate.pipeline.service import Service
from metricgate.receivers.otlp import OtlpReceiver
from tests.support.capture import CaptureExporter, registry_with_capture
from tests.support.poll import wait_until

CONFIG = """
receivers:
  otlp:
    protocols:
      grpc: {{endpoint: "127.0.0.1:0", max_recv_msg_size: 1MiB}}
      http: {{endpoint: "127.0.0.1:0", max_request_body_size: 2MiB,
              max_decompressed_size: 8MiB}}
exporters:
  capture: {{sending_queue: {{queue_size: {queue_size}, num_consumers: 1}}}}
service:
  pipelines:
    metrics: {{receivers: [otlp], exporters: [capture]}}
  telemetry:
    metrics: {{address: ""}}
"""


@dataclass
class Gateway:
    """A started service plus what tests reach for."""

    service: Service
    receiver: OtlpReceiver
    capture: CaptureExporter

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.receiver.http_port}/v1/metrics"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.receiver.grpc_port}"

    def counter(self, name: str, **labels: str) -> float:
        value = self.service.telemetry.registry.get_sample_value(
            name, {"receiver": "otlp", **labels}
        )
        return value or 0.0

    def hold_exports(self) -> asyncio.Event:
        """Make the capture exporter wait for the returned event before taking any batch."""
        release = asyncio.Event()
        deliver = self.capture.export

        async def held(batch: Batch) -> None:
            await release.wait()
            await deliver(batch)

        self.capture.export = held  # type: ignore[method-assign]
        return release

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        await wait_until(predicate, timeout=timeout)


@asynccontextmanager
async def running(queue_size: int = 100) -> AsyncIterator[Gateway]:
    config = load_config_text(CONFIG.format(queue_size=queue_size), registry_with_capture(), {})
    service = Service(config)
    await service.start()
    try:
        receiver = service.receivers["otlp"]
        assert isinstance(receiver, OtlpReceiver)
        yield Gateway(service, receiver, CaptureExporter.instances["capture"])
    finally:
        await service.shutdown(time.monotonic() + 5)
