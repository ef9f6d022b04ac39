"""A backend that is down, then back: one warning, summaries while it lasts, one recovery line.

Driven through the sending core against real HTTP backends: the remote-write exporter with ten
disk shards (each retrying on its own) and the otlp exporter with ten workers. Before the core
logged failures once per exporter, ten shards wrote ~33 warnings in ten seconds for eight points.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from aiohttp import web
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceResponse,
)

from metricgate.exporters.otlp import OtlpExporter, OtlpExporterConfig
from metricgate.exporters.prometheus_remote_write import (
    RemoteWriteExporter,
    RemoteWriteExporterConfig,
)
from metricgate.model import MetricKind
from metricgate.pipeline import failure_log
from metricgate.pipeline.component import Exporter
from metricgate.pipeline.host import Host
from metricgate.pipeline.queue import ExporterQueue, QueueSettings, RetrySettings
from metricgate.telemetry.metrics import SelfMetrics
from tests.support.batches import number_batch
from tests.support.counters import Counters
from tests.support.poll import wait_until
from tests.support.ports import free_port
from tests.support.remote_write import Receiver, serve

INTERVAL = 0.4
RETRY = {"initial_interval": 0.02, "max_interval": 0.05, "max_elapsed_time": 0}


def remote_write(port: int, tmp_path: Path) -> tuple[Exporter, QueueSettings, RetrySettings]:
    config = RemoteWriteExporterConfig.model_validate(
        {
            "endpoint": f"http://127.0.0.1:{port}/api/v1/write",
            "flush_interval": 0.01,
            "target_info": {"enabled": False},
            "shards": {"min": 10, "max": 10},
            "sending_queue": {"storage": {"directory": str(tmp_path)}},
            "retry_on_failure": RETRY,
        }
    )
    exporter = RemoteWriteExporter("prometheus_remote_write", config)
    return exporter, config.sending_queue, config.retry_on_failure


def otlp(port: int, _: Path) -> tuple[Exporter, QueueSettings, RetrySettings]:
    config = OtlpExporterConfig.model_validate(
        {"endpoint": f"http://127.0.0.1:{port}", "protocol": "http", "retry_on_failure": RETRY}
    )
    return OtlpExporter("otlp", config), QueueSettings(num_consumers=10), config.retry_on_failure


async def otlp_ok(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(body=ExportMetricsServiceResponse().SerializeToString())


def exporter_records(caplog: pytest.LogCaptureFixture, exporter_id: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "exporter", None) == exporter_id]


@pytest.mark.parametrize("make", [remote_write, otlp], ids=["remote_write_10_disk_shards", "otlp"])
async def test_a_downed_backend_logs_one_warning_summaries_and_one_recovery(
    make: Callable[[int, Path], tuple[Exporter, QueueSettings, RetrySettings]],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(failure_log, "SUMMARY_INTERVAL_S", INTERVAL)
    caplog.set_level(logging.INFO, "metricgate")
    port = free_port()
    exporter, settings, retry = make(port, tmp_path)
    telemetry = SelfMetrics()
    queue = ExporterQueue(exporter, settings, retry)
    counters = Counters(telemetry, exporter.component_id)
    receiver = Receiver()
    await queue.start(Host(telemetry))
    try:
        started = time.monotonic()
        for i in range(8):  # eight points, spread over the shards / workers
            batch = number_batch({f"s{i}": 1.0}, kind=MetricKind.GAUGE, timestamp=time.time_ns())
            queue.enqueue(batch)

        def summaries() -> list[logging.LogRecord]:
            return [
                r
                for r in exporter_records(caplog, exporter.component_id)
                if r.getMessage() == "exporter still failing"
            ]

        await wait_until(lambda: len(summaries()) >= 2, timeout=15)
        down_for = time.monotonic() - started
        if isinstance(exporter, OtlpExporter):
            app = web.Application()
            app.router.add_post("/v1/metrics", otlp_ok)
            runner = web.AppRunner(app)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            try:
                await wait_until(lambda: counters.sent == 8, timeout=15)
            finally:
                await runner.cleanup()
        else:
            async with serve(receiver, port):
                await wait_until(lambda: counters.sent == 8, timeout=15)
    finally:
        await queue.shutdown(time.monotonic() + 2)
    records = exporter_records(caplog, exporter.component_id)
    messages = [r.getMessage() for r in records]
    assert messages.count("exporter failing; will retry") == 1
    assert messages.count("exporter recovered") == 1
    assert counters.retries > 10, "every shard or worker retried, many times"
    problems = [r for r in records if r.levelno >= logging.WARNING]
    assert len(problems) == 1 + len(summaries()) <= 2 + (down_for + 2) / INTERVAL
    for summary in summaries():
        assert summary.failed_attempts > 0  # type: ignore[attr-defined]
        assert summary.last_error  # type: ignore[attr-defined]
    recovered = next(r for r in records if r.getMessage() == "exporter recovered")
    assert recovered.levelno == logging.INFO
    assert recovered.failed_attempts >= counters.retries  # type: ignore[attr-defined]
    assert recovered.points_lost == 0  # type: ignore[attr-defined]
    assert messages.index("exporter recovered") == len(messages) - 1


async def test_refusals_are_logged_once_per_interval_with_their_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "metricgate")
    receiver = Receiver(answer=lambda _: web.Response(status=400, text="out of order sample"))
    async with serve(receiver) as port:
        config = RemoteWriteExporterConfig.model_validate(
            {
                "endpoint": f"http://127.0.0.1:{port}/api/v1/write",
                "flush_interval": 0.01,
                "target_info": {"enabled": False},
            }
        )
        exporter = RemoteWriteExporter("prometheus_remote_write", config)
        telemetry = SelfMetrics()
        queue = ExporterQueue(exporter, config.sending_queue, RetrySettings.model_validate(RETRY))
        counters = Counters(telemetry, exporter.component_id)
        await queue.start(Host(telemetry))
        try:
            for step in range(20):
                stamp = time.time_ns() + step
                queue.enqueue(number_batch({"a": 1.0}, kind=MetricKind.GAUGE, timestamp=stamp))
                await wait_until(lambda: counters.failed() == step + 1, timeout=15)  # noqa: B023
        finally:
            await queue.shutdown(time.monotonic() + 2)
    refused = [
        r
        for r in exporter_records(caplog, exporter.component_id)
        if r.getMessage() == "export failed permanently; dropped"
    ]
    assert len(refused) == 1
    assert refused[0].levelno == logging.ERROR
    assert "out of order sample" in refused[0].error  # type: ignore[attr-defined]
    assert len(receiver.attempts) == 20  # refused for good: never retried
