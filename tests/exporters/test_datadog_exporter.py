"""The datadog exporter against the strict local intake: encodings, splitting, retry and drop."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from metricgate.config import load_config_text
from metricgate.errors import PermanentError, RetryableError
from metricgate.exporters.datadog import DatadogExporter, DatadogExporterConfig
from metricgate.pipeline.host import Host
from metricgate.pipeline.queue import ExporterQueue, QueueSettings, RetrySettings
from metricgate.pipeline.service import Service
from metricgate.telemetry.metrics import SelfMetrics
from tests.support.capture import InjectReceiver, registry_with_capture
from tests.support.datadog_batches import every_kind, many_series
from tests.support.datadog_intake import API_KEY, Intake, running_intake
from tests.support.poll import wait_until


def _exporter(intake: Intake, **extra: Any) -> DatadogExporter:
    config = DatadogExporterConfig.model_validate(
        {"api": {"key": API_KEY}, "endpoint": intake.url, "timeout": "5s", **extra}
    )
    return DatadogExporter("datadog", config)


@asynccontextmanager
async def started(exporter: DatadogExporter) -> AsyncIterator[DatadogExporter]:
    await exporter.start(Host(SelfMetrics()))
    try:
        yield exporter
    finally:
        await exporter.shutdown()


@pytest.mark.parametrize("compression", ["gzip", "deflate", "zstd1", "none"])
async def test_every_kind_is_accepted_in_every_encoding(compression: str) -> None:
    now = time.time_ns()
    async with (
        running_intake() as intake,
        started(_exporter(intake, compression=compression)) as exporter,
    ):
        await exporter.export(every_kind(now))
    assert intake.refusals == []
    assert intake.encodings == [compression if compression != "none" else ""]
    found = {(s["metric"], s["type"]): s["points"][0]["value"] for s in intake.series}
    # the summary's count and sum are cumulative: its first point only sets the baseline
    assert found == {
        ("g", 3): 1.5,
        ("c", 1): 3.0,
        ("h.count", 1): 3.0,
        ("h.sum", 1): 6.0,
        ("h.min", 3): 0.5,
        ("h.max", 3): 4.0,
        ("q.quantile", 3): 2.0,
    }
    assert all(s["resources"] == [{"name": "h1", "type": "host"}] for s in intake.series)
    assert all(s["points"][0]["timestamp"] == now // 10**9 for s in intake.series)


async def test_wrong_key_is_permanent() -> None:
    async with running_intake() as intake:
        exporter = DatadogExporter(
            "datadog",
            DatadogExporterConfig.model_validate({"api": {"key": "nope"}, "endpoint": intake.url}),
        )
        async with started(exporter):
            with pytest.raises(PermanentError, match="403"):
                await exporter.export(every_kind(time.time_ns()))


@pytest.mark.parametrize(("random_tags", "count"), [(True, 8_000), (False, 10_000)])
async def test_large_batches_are_split_within_both_limits(random_tags: bool, count: int) -> None:
    batch = many_series(count, random_tags)
    # The intake checks every payload against the official client's models in this process,
    # which takes seconds per large payload on a loaded machine: the split is under test here,
    # not the request timeout.
    async with running_intake() as intake, started(_exporter(intake, timeout="60s")) as exporter:
        await exporter.export(batch)
    assert intake.refusals == []
    assert intake.requests > 1
    assert len(intake.series) == count


@asynccontextmanager
async def queued(intake: Intake) -> AsyncIterator[tuple[ExporterQueue, SelfMetrics]]:
    queue = ExporterQueue(
        _exporter(intake),
        QueueSettings(num_consumers=1),
        RetrySettings(initial_interval=0.01, max_interval=0.05, max_elapsed_time=10),
    )
    telemetry = SelfMetrics()
    await queue.start(Host(telemetry))
    try:
        yield queue, telemetry
    finally:
        await queue.shutdown(time.monotonic() + 2)


def _sample(telemetry: SelfMetrics, name: str, **labels: str) -> float:
    return telemetry.registry.get_sample_value(name, {"exporter": "datadog", **labels}) or 0.0


async def _settled(telemetry: SelfMetrics, points: int) -> None:
    """Wait until every point of the export was counted sent or failed."""

    def settled() -> bool:
        sent = _sample(telemetry, "metricgate_exporter_sent_points_total")
        failed = _sample(
            telemetry, "metricgate_exporter_send_failed_points_total", reason="permanent"
        )
        return sent + failed >= points

    await wait_until(settled, timeout=8)


async def test_retry_resends_only_the_payloads_not_accepted() -> None:
    batch = many_series(8_000, random_tags=True)
    async with running_intake() as intake, queued(intake) as (queue, telemetry):
        intake.forced_at[2] = (503, {"Retry-After": "0"})
        queue.enqueue(batch)
        await _settled(telemetry, batch.point_count())
    assert len(intake.series) == 8_000, "a payload was lost or sent twice"
    assert len({s["tags"][0] for s in intake.series}) == 8_000
    assert _sample(telemetry, "metricgate_exporter_retries_total") == 1


async def test_429_waits_for_the_rate_limit_reset() -> None:
    batch = every_kind(time.time_ns())
    async with running_intake() as intake, queued(intake) as (queue, telemetry):
        intake.script = [(429, {"X-RateLimit-Reset": "1"})]
        started_at = time.monotonic()
        queue.enqueue(batch)
        await _settled(telemetry, batch.point_count())
        elapsed = time.monotonic() - started_at
    assert elapsed >= 0.95
    assert intake.requests == 2 and len(intake.series) == 7


@pytest.mark.parametrize("status", [408, 500, 502, 503])
async def test_transient_statuses_are_retryable(status: int) -> None:
    async with running_intake() as intake:
        intake.script = [(status, {})]
        async with started(_exporter(intake)) as exporter:
            with pytest.raises(RetryableError):
                await exporter.export(every_kind(time.time_ns()))


@pytest.mark.parametrize("status", [400, 403, 404, 413])
async def test_refusals_are_dropped_not_retried_and_counted(status: int) -> None:
    batch = every_kind(time.time_ns())
    async with running_intake() as intake, queued(intake) as (queue, telemetry):
        intake.script = [(status, {})]
        queue.enqueue(batch)
        await _settled(telemetry, batch.point_count())
    assert intake.requests == 1
    dropped = _sample(telemetry, "metricgate_exporter_send_failed_points_total", reason="permanent")
    assert dropped == batch.point_count()


async def test_unreachable_intake_is_retryable() -> None:
    config = DatadogExporterConfig.model_validate(
        {"api": {"key": API_KEY}, "endpoint": "http://127.0.0.1:9", "timeout": "1s"}
    )
    async with started(DatadogExporter("datadog", config)) as exporter:
        with pytest.raises(RetryableError):
            await exporter.export(every_kind(time.time_ns()))


def test_config() -> None:
    config = DatadogExporterConfig.model_validate({"api": {"key": "k", "site": "datadoghq.eu"}})
    assert config.url == "https://api.datadoghq.eu/api/v2/series"
    assert config.compression == "gzip"
    with pytest.raises(ValueError, match="exactly one"):
        DatadogExporterConfig.model_validate({"api": {}})
    with pytest.raises(ValueError, match="URL"):
        DatadogExporterConfig.model_validate({"api": {"key": "k"}, "endpoint": "api.x"})


async def test_key_file_is_read_at_start(tmp_path: Any) -> None:
    path = tmp_path / "key"
    path.write_text(API_KEY + "\n")
    async with running_intake() as intake:
        config = DatadogExporterConfig.model_validate(
            {"api": {"key_file": str(path)}, "endpoint": intake.url}
        )
        async with started(DatadogExporter("datadog", config)) as exporter:
            await exporter.export(every_kind(time.time_ns()))
    assert intake.refusals == [] and intake.series


async def test_configured_in_a_pipeline_with_the_key_from_the_environment() -> None:
    text = """
receivers: {inject: {}}
exporters:
  datadog:
    api: {key: "${env:DD_API_KEY}"}
    endpoint: "%s"
    hostname: gateway-host
    metrics: {histograms: {mode: counters}}
service:
  telemetry: {metrics: {address: ""}}
  pipelines: {metrics: {receivers: [inject], exporters: [datadog]}}
"""
    async with running_intake() as intake:
        config = load_config_text(
            text % intake.url, registry_with_capture(), {"DD_API_KEY": API_KEY}
        )
        service = Service(config)
        await service.start()
        try:
            await InjectReceiver.instances["inject"].push(every_kind(time.time_ns()))
            await wait_until(lambda: len(intake.series) >= 9)
        finally:
            await service.shutdown(time.monotonic() + 2)
    buckets = [s for s in intake.series if s["metric"] == "h.bucket"]
    assert [b["points"][0]["value"] for b in buckets] == [1.0, 2.0]
    assert intake.refusals == [] and len(intake.series) == 9
