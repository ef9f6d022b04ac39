"""Remote-write's sent / send-failed counters against what Prometheus and VictoriaMetrics stored.

The counters count data points on the backend's answer (a histogram point is one point and many
samples), in memory and with the disk queue; a request the backend refuses is send-failed, never
sent.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from metricgate.exporters.prometheus_remote_write import (
    RemoteWriteExporter,
    RemoteWriteExporterConfig,
)
from metricgate.model import INTERNER, Batch, HistogramPoint, MetricKind, MetricPoints
from metricgate.pipeline.host import Host
from metricgate.pipeline.queue import ExporterQueue
from metricgate.telemetry.metrics import SelfMetrics
from tests.support.batches import metric, number_batch
from tests.support.counters import Counters
from tests.support.poll import wait_until
from tests.support.prometheus import PrometheusServer

pytestmark = pytest.mark.integration


@asynccontextmanager
async def sending(port: int, disk: Path | None) -> AsyncIterator[tuple[ExporterQueue, Counters]]:
    settings: dict[str, Any] = {
        "endpoint": f"http://127.0.0.1:{port}/api/v1/write",
        "flush_interval": 0.01,
        "max_samples_per_send": 100,
        "target_info": {"enabled": False},
        "shards": {"min": 4, "max": 4},
        "retry_on_failure": {"initial_interval": 0.02, "max_interval": 0.1},
    }
    if disk is not None:
        settings["sending_queue"] = {"storage": {"directory": str(disk)}}
    config = RemoteWriteExporterConfig.model_validate(settings)
    telemetry = SelfMetrics()
    queue = ExporterQueue(
        RemoteWriteExporter("prometheus_remote_write", config),
        config.sending_queue,
        config.retry_on_failure,
    )
    await queue.start(Host(telemetry))
    try:
        yield queue, Counters(telemetry, "prometheus_remote_write")
    finally:
        await queue.shutdown(time.monotonic() + 5)


async def stored(backend: PrometheusServer, expr: str, expected: float) -> None:
    """Wait until the instant query `expr` (one series) has the value `expected`."""
    result: list[Any] = []

    async def query() -> None:
        result[:] = await asyncio.to_thread(backend.query, expr)

    await wait_until(
        lambda: result and float(result[0]["value"][1]) == expected, query, 30, interval=0.2
    )


def histogram(name: str, now_ns: int) -> Batch:
    m = metric(name, MetricKind.HISTOGRAM)
    group = MetricPoints(m)
    point = HistogramPoint(6, 9.0, (1.0, 5.0), (1, 3, 2))
    group.append(INTERNER.intern_series(m, (("k", "h"),)), point, now_ns)
    return Batch([group])


@pytest.mark.parametrize("disk", [False, True], ids=["memory", "disk"])
async def test_sent_points_are_what_the_backend_stored(
    remote_write_backend: PrometheusServer, disk: bool, tmp_path: Path
) -> None:
    name = f"counted_{uuid.uuid4().hex[:8]}"
    rounds, series = 5, 60
    now = time.time_ns()
    async with sending(remote_write_backend.port, tmp_path if disk else None) as (queue, counters):
        for r in range(rounds):
            values = {f"s{i}": float(r) for i in range(series)}
            stamp = now - (rounds - r) * 1_000_000_000
            queue.enqueue(number_batch(values, name=name, kind=MetricKind.GAUGE, timestamp=stamp))
        queue.enqueue(histogram(f"{name}_latency", now))  # one point, 6 samples
        await stored(remote_write_backend, f"sum(count_over_time({name}[10m]))", rounds * series)
        await stored(remote_write_backend, f'{name}_latency_bucket{{le="+Inf"}}', 6)
        await wait_until(lambda: counters.sent == rounds * series + 1, timeout=15)
        assert counters.failed() == counters.failed("retries_exhausted") == 0


# VictoriaMetrics stores samples of any age: the refusal is Prometheus'.
@pytest.mark.parametrize("remote_write_backend", ["prometheus"], indirect=True)
async def test_a_request_prometheus_refuses_is_failed_not_sent(
    remote_write_backend: PrometheusServer,
) -> None:
    name = f"refused_{uuid.uuid4().hex[:8]}"
    now = time.time_ns()
    async with sending(remote_write_backend.port, None) as (queue, counters):
        queue.enqueue(number_batch({"now": 1.0}, name=name, kind=MetricKind.GAUGE, timestamp=now))
        await stored(remote_write_backend, f'{name}{{k="now"}}', 1.0)
        await wait_until(lambda: counters.sent == 1, timeout=15)
        old = now - 3 * 3600 * 1_000_000_000  # out of bounds for Prometheus' head: 400
        queue.enqueue(number_batch({"old": 2.0}, name=name, kind=MetricKind.GAUGE, timestamp=old))
        await wait_until(lambda: counters.failed() == 1, timeout=15)
        assert counters.sent == 1 and counters.retries == 0
