"""End to end: a real Prometheus scrapes a target and remote-writes into metricgate.

The series names on metricgate's Prometheus exporter page must be the ones Prometheus stored, and
counters (typed by the metadata Prometheus sends) keep their names exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from metricgate.config import load_config_text
from metricgate.exporters.prometheus import PrometheusExporter
from metricgate.pipeline.service import Service
from metricgate.receivers.prometheus_remote_write import RemoteWriteReceiver
from tests.support.capture import registry_with_capture
from tests.support.poll import wait_until
from tests.support.ports import free_port
from tests.support.prometheus import PrometheusServer, run_prometheus

pytestmark = pytest.mark.integration

CONFIG = """
receivers:
  prometheus_remote_write: {endpoint: "127.0.0.1:0"}
exporters:
  prometheus: {endpoint: "127.0.0.1:0"}
service:
  pipelines:
    metrics: {receivers: [prometheus_remote_write], exporters: [prometheus]}
  telemetry:
    metrics: {address: ""}
"""
REMOTE_WRITE = """
remote_write:
  - url: http://127.0.0.1:{port}/api/v1/write
    queue_config: {{batch_send_deadline: 500ms, min_backoff: 50ms, max_backoff: 500ms}}
    metadata_config: {{send: true, send_interval: 1s}}
"""
_SAMPLE_NAME = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]", re.MULTILINE)


@pytest.fixture
async def service() -> AsyncIterator[Service]:
    found = Service(load_config_text(CONFIG, registry_with_capture(), {}))
    await found.start()
    try:
        yield found
    finally:
        await found.shutdown(time.monotonic() + 5)


@pytest.fixture
def target() -> Iterator[str]:
    """A prometheus_client exporter on a free port, for Prometheus to scrape."""
    registry = CollectorRegistry()
    Counter("demo_requests", "Requests.", ["code"], registry=registry).labels("200").inc(5)
    Gauge("demo_temperature_celsius", "Temperature.", registry=registry).set(21.5)
    Histogram("demo_latency_seconds", "Latency.", registry=registry).observe(0.2)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


async def _page(exporter: PrometheusExporter) -> str:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{exporter.port}/metrics") as reply,
    ):
        return await reply.text()


async def test_prometheus_remote_write_reaches_the_exporter_page(
    service: Service, target: str, tmp_path: Path
) -> None:
    receiver = service.receivers["prometheus_remote_write"]
    exporter = service.exporter_queues["prometheus"].exporter
    assert isinstance(receiver, RemoteWriteReceiver) and isinstance(exporter, PrometheusExporter)
    manager = run_prometheus(
        tmp_path,
        scrape_targets=[target],
        extra_config=REMOTE_WRITE.format(port=receiver.port),
    )
    prometheus: PrometheusServer = await asyncio.to_thread(manager.__enter__)
    try:
        stored = await asyncio.to_thread(
            prometheus.wait_for, 'demo_requests_total{job="metricgate"}'
        )
        assert stored
        response = await asyncio.to_thread(
            prometheus.query, 'count by (__name__) ({job="metricgate"})'
        )
        names = {row["metric"]["__name__"] for row in response}
        assert {"demo_requests_total", "demo_latency_seconds_bucket", "up"} <= names
        # `demo_requests_created` (an OpenMetrics scrape's counter creation time) is a sample
        # name of the counter family `demo_requests_total` in OpenMetrics, so the exporter keeps
        # only the counter; every other name must come through as it is.
        names.discard("demo_requests_created")
        pages = [""]

        async def fetch() -> None:
            pages[0] = await _page(exporter)

        def complete() -> bool:
            shown = set(_SAMPLE_NAME.findall(pages[0]))
            return names <= shown and "# TYPE demo_requests_total counter" in pages[0]

        with contextlib.suppress(AssertionError):  # the assertions below say what is missing
            await wait_until(complete, fetch, 20, 0.2)
        page = pages[0]
        shown = set(_SAMPLE_NAME.findall(page))
        typed = "# TYPE demo_requests_total counter" in page
        assert names <= shown, f"missing on the page: {sorted(names - shown)}"
        assert typed, page
        assert re.search(
            r'^demo_requests_total\{code="200",instance="[^"]+",job="metricgate"\} 5',
            page,
            re.MULTILINE,
        )
        assert "demo_requests_total_total" not in page
        assert 'demo_temperature_celsius{instance="' in page
    finally:
        await asyncio.to_thread(manager.__exit__, None, None, None)
