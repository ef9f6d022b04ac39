"""The npm `prometheus-remote-write` client, which sends labels unsorted, against the receiver,
Prometheus 2.42 and VictoriaMetrics 1.79: all three accept it and store the same series."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from metricgate.components import default_registry
from metricgate.config import load_config_text
from metricgate.exporters.prometheus import PrometheusExporter
from metricgate.pipeline.service import Service
from metricgate.receivers.prometheus_remote_write import RemoteWriteReceiver
from tests.support.clients import node_env
from tests.support.poll import wait_until
from tests.support.prometheus import PrometheusServer, run_prometheus
from tests.support.victoria import run_victoria_metrics

pytestmark = pytest.mark.integration

# The client's README examples as written (the first sends `service` before `__name__`), plus a
# series whose labels arrive in reverse order. Node 20's own fetch stands in for node-fetch.
CLIENT = """
const { pushTimeseries, pushMetrics } = require("prometheus-remote-write");
const url = process.argv[2];
const fetch = globalThis.fetch;
(async () => {
  const results = [];
  results.push(await pushMetrics(
    { queue_depth_total: 100 },
    { url, labels: { service: "queue-worker" }, fetch },
  ));
  results.push(await pushTimeseries({
    labels: { __name__: "queue_depth_total", instance: "dev.example.com", service: "SQS" },
    samples: [{ value: 150, timestamp: Date.now() }],
  }, { url, fetch }));
  results.push(await pushTimeseries({
    labels: { zone: "b", app: "api", __name__: "jobs_running" },
    samples: [{ value: 7, timestamp: Date.now() }],
  }, { url, fetch }));
  console.log(JSON.stringify(results));
})().catch((error) => { console.error(error); process.exit(1); });
"""

EXPECTED = {
    ("queue_depth_total", (("service", "queue-worker"),), 100.0),
    ("queue_depth_total", (("instance", "dev.example.com"), ("service", "SQS")), 150.0),
    ("jobs_running", (("app", "api"), ("zone", "b")), 7.0),
}

GATEWAY = """
receivers:
  prometheus_remote_write: {endpoint: "127.0.0.1:0", strict: STRICT}
exporters:
  prometheus: {endpoint: "127.0.0.1:0"}
service:
  pipelines:
    metrics: {receivers: [prometheus_remote_write], exporters: [prometheus]}
  telemetry: {metrics: {address: ""}}
"""

Stored = set[tuple[str, tuple[tuple[str, str], ...], float]]


async def push(tmp_path: Path, url: str) -> list[dict[str, object]]:
    """Run the client's examples against `url`; the client's result of each push."""
    env = node_env("prometheus-remote-write")
    script = tmp_path / "push.js"
    script.write_text(CLIENT)
    process = await asyncio.create_subprocess_exec(
        "node",
        str(script),
        url,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    results: list[dict[str, object]] = json.loads(out)
    return results


@asynccontextmanager
async def gateway(strict: bool) -> AsyncIterator[tuple[str, PrometheusExporter]]:
    config = load_config_text(
        GATEWAY.replace("STRICT", str(strict).lower()), default_registry(), {}
    )
    service = Service(config)
    await service.start()
    try:
        receiver = service.receivers["prometheus_remote_write"]
        assert isinstance(receiver, RemoteWriteReceiver)
        exporter = service.exporter_queues["prometheus"].exporter
        assert isinstance(exporter, PrometheusExporter)
        yield f"http://127.0.0.1:{receiver.port}/api/v1/write", exporter
    finally:
        await service.shutdown(time.monotonic() + 5)


async def page_series(exporter: PrometheusExporter, count: int) -> Stored:
    """The series on the exporter's page, once it holds `count` (exports run on their own task)."""
    found: Stored = set()

    async def look() -> None:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{exporter.port}/metrics") as reply,
        ):
            text = await reply.text()
        found.clear()
        found.update(
            (s.name, tuple(sorted(s.labels.items())), s.value)
            for family in text_string_to_metric_families(text)
            for s in family.samples
        )

    await wait_until(lambda: len(found) >= count, look)
    return found


def stored(server: PrometheusServer) -> Stored:
    found = server.wait_for('{__name__=~"queue_depth_total|jobs_running"}', min_results=3)
    return {
        (
            row["metric"]["__name__"],
            tuple(sorted((k, v) for k, v in row["metric"].items() if k != "__name__")),
            float(row["value"][1]),
        )
        for row in found
    }


async def test_the_npm_client_is_accepted_and_its_labels_sorted(tmp_path: Path) -> None:
    async with gateway(strict=False) as (url, exporter):
        results = await push(tmp_path, url)
        assert [r["status"] for r in results] == [204, 204, 204], results
        assert await page_series(exporter, 3) == EXPECTED


async def test_strict_refuses_the_unsorted_pushes_with_a_message(tmp_path: Path) -> None:
    async with gateway(strict=True) as (url, exporter):
        results = await push(tmp_path, url)
        assert [r["status"] for r in results] == [400, 204, 400], results
        assert "unsorted label '__name__'" in str(results[0]["errorMessage"])
        assert "strict" in str(results[0]["errorMessage"])
        assert await page_series(exporter, 1) == {s for s in EXPECTED if s[2] == 150.0}


async def test_prometheus_and_victoria_metrics_store_what_the_gateway_shows(
    tmp_path: Path,
) -> None:
    with run_prometheus(tmp_path, extra_args=["--web.enable-remote-write-receiver"]) as server:
        results = await push(tmp_path, f"{server.url}/api/v1/write")
        assert [r["status"] for r in results] == [204, 204, 204], results
        assert stored(server) == EXPECTED
    with run_victoria_metrics(tmp_path) as victoria:
        results = await push(tmp_path, f"{victoria.url}/api/v1/write")
        assert [r["status"] for r in results] == [204, 204, 204], results
        assert stored(victoria) == EXPECTED
