"""Each exporter's sent / send-failed counters against what its backend really received.

The exporter runs behind the sending core (`ExporterQueue`), which counts on the backend's
answer; each test reads what the backend kept (a second metricgate, the strict Datadog intake,
moto's CloudWatch and Logs, the debug log, the scrape page) and compares. Remote-write, against
real Prometheus and VictoriaMetrics, is in `test_remote_write_counters.py`.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import boto3
import pytest
from botocore.exceptions import ClientError

from metricgate.exporters.cloudwatch import (
    CloudWatchExporter,
    CloudWatchExporterConfig,
    EmfExporter,
)
from metricgate.exporters.datadog import DatadogExporter, DatadogExporterConfig
from metricgate.exporters.debug import DebugExporter, DebugExporterConfig
from metricgate.exporters.loadbalancing import LoadBalancingExporter, LoadBalancingExporterConfig
from metricgate.exporters.otlp import OtlpExporter, OtlpExporterConfig
from metricgate.exporters.prometheus import PrometheusExporter, PrometheusExporterConfig
from metricgate.model import INTERNER, Batch, MetricKind, MetricPoints
from metricgate.pipeline.component import Exporter
from metricgate.pipeline.host import Host
from metricgate.pipeline.queue import ExporterQueue, QueueSettings
from metricgate.telemetry.metrics import SelfMetrics
from tests.receivers.otlp_gateway import running
from tests.support.batches import metric, number_batch
from tests.support.counters import FAST, Counters
from tests.support.datadog_batches import every_kind, many_series
from tests.support.datadog_intake import API_KEY, running_intake
from tests.support.loadbalancing import downstreams
from tests.support.loadbalancing import services_batch as routed_batch
from tests.support.otlp_batches import every_kind_batch
from tests.support.poll import wait_until


@asynccontextmanager
async def sending(exporter: Exporter) -> AsyncIterator[tuple[ExporterQueue, Counters]]:
    """`exporter` behind its sending queue, as a gateway runs it."""
    telemetry = SelfMetrics()
    queue = ExporterQueue(exporter, QueueSettings(num_consumers=1), FAST)
    await queue.start(Host(telemetry))
    try:
        yield queue, Counters(telemetry, exporter.component_id)
    finally:
        await queue.shutdown(time.monotonic() + 5)


def fail_once(call: Callable[..., Any], at: int, code: str, operation: str) -> Callable[..., Any]:
    """`call`, but the `at`-th call (1-based) fails as AWS throttling does."""
    calls = 0

    def flaky(**kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == at:
            error = {"Code": code, "Message": "Rate exceeded"}
            raise ClientError(
                {"Error": error, "ResponseMetadata": {"HTTPStatusCode": 400}}, operation
            )
        return call(**kwargs)

    return flaky


def gauges(count: int, name: str = "g") -> Batch:
    return number_batch(
        {f"s{i}": float(i) for i in range(count)},
        name=name,
        kind=MetricKind.GAUGE,
        timestamp=time.time_ns(),
    )


@pytest.mark.parametrize("protocol", ["grpc", "http"])
async def test_otlp_counts_what_a_second_metricgate_took(protocol: str) -> None:
    good = every_kind_batch()
    bad = MetricPoints(good.metrics[0].metric)
    bad.append(good.metrics[0].series[0], 1.0, 0)  # time 0: refused in partial_success
    async with running() as gateway:
        endpoint = gateway.grpc_target if protocol == "grpc" else gateway.http_url
        config = OtlpExporterConfig.model_validate(
            {"endpoint": endpoint, "protocol": protocol, "tls": {"insecure": True}}
        )
        async with sending(OtlpExporter("otlp", config)) as (queue, counters):
            queue.enqueue(good)
            queue.enqueue(Batch([*good.metrics, bad]))
            await wait_until(
                lambda: counters.sent + counters.failed() == 2 * good.point_count() + 1
            )
            await gateway.wait_for(lambda: gateway.capture.points() == 2 * good.point_count())
            assert counters.sent == gateway.capture.points()
            assert counters.failed() == 1
            assert counters.retries == 0


async def test_loadbalancing_counts_each_point_once_across_members_and_retries() -> None:
    sent = routed_batch()
    async with downstreams(2) as gateways:
        live = [g.grpc_target for g in gateways]
        config = LoadBalancingExporterConfig.model_validate(
            {
                "protocol": {"otlp": {"timeout": "2s", "tls": {"insecure": True}}},
                "resolver": {"static": {"hostnames": [*live, "127.0.0.1:1"]}},
            }
        )
        exporter = LoadBalancingExporter("loadbalancing", config)
        async with sending(exporter) as (queue, counters):
            queue.enqueue(sent)
            await wait_until(lambda: counters.retries >= 2, timeout=15)  # the dead member's part
            partial = counters.sent
            received = sum(g.capture.points() for g in gateways)
            assert 0 < partial == received < sent.point_count()
            await exporter.set_members(live)  # it leaves: its part goes to the others
            await wait_until(lambda: counters.sent == sent.point_count(), timeout=15)
            await gateways[0].wait_for(
                lambda: sum(g.capture.points() for g in gateways) == sent.point_count()
            )
            assert counters.failed() == counters.failed("retries_exhausted") == 0


async def test_datadog_counts_points_on_the_intakes_answers() -> None:
    batch = many_series(8_000, random_tags=True)
    kinds = every_kind(time.time_ns())  # 4 points, 7 series
    async with running_intake() as intake:
        intake.forced_at[2] = (503, {"Retry-After": "0"})  # retried: sent once, later
        intake.forced_at[3] = (400, {})  # refused for good
        config = DatadogExporterConfig.model_validate(
            {"api": {"key": API_KEY}, "endpoint": intake.url, "timeout": "5s"}
        )
        async with sending(DatadogExporter("datadog", config)) as (queue, counters):
            queue.enqueue(batch)
            await wait_until(lambda: counters.sent + counters.failed() == 8_000, timeout=15)
            assert counters.sent == len(intake.series) < 8_000
            assert counters.failed() == 8_000 - len(intake.series)
            assert counters.retries == 1
            queue.enqueue(kinds)
            await wait_until(lambda: counters.sent + counters.failed() == 8_004, timeout=15)
            assert len(intake.series) - counters.sent == 7 - 4  # points, not series


@pytest.mark.usefixtures("dummy_credentials")
async def test_cloudwatch_counts_what_moto_stored(moto_url: str) -> None:
    namespace = f"mg-{uuid.uuid4().hex[:8]}"
    config = CloudWatchExporterConfig.model_validate(
        {
            "namespace": namespace,
            "region": "us-east-1",
            "endpoint": moto_url,
            "disable_request_compression": True,
            "max_metrics_per_request": 10,
        }
    )
    exporter = CloudWatchExporter("cloudwatch", config)
    async with sending(exporter) as (queue, counters):
        exporter._client.put_metric_data = fail_once(
            exporter._client.put_metric_data, 2, "Throttling", "PutMetricData"
        )
        queue.enqueue(gauges(25))
        await wait_until(lambda: counters.sent == 25, timeout=15)
        assert counters.retries == 1 and counters.failed() == 0
    cloudwatch = boto3.client("cloudwatch", endpoint_url=moto_url, region_name="us-east-1")
    stored = cloudwatch.list_metrics(Namespace=namespace)["Metrics"]
    assert len(stored) == counters.sent


@pytest.mark.usefixtures("dummy_credentials")
async def test_cloudwatch_emf_counts_the_events_logs_stored(moto_url: str) -> None:
    group = f"/mg/{uuid.uuid4().hex[:8]}"
    config = CloudWatchExporterConfig.model_validate(
        {
            "mode": "emf",
            "namespace": "MyApp",
            "region": "us-east-1",
            "endpoint": moto_url,
            "log_group_name": group,
            "disable_request_compression": True,
        }
    )
    exporter = EmfExporter("cloudwatch", config)
    async with sending(exporter) as (queue, counters):
        exporter._client.put_log_events = fail_once(
            exporter._client.put_log_events, 1, "ThrottlingException", "PutLogEvents"
        )
        queue.enqueue(gauges(3))
        await wait_until(lambda: counters.sent == 3, timeout=15)
        assert counters.retries == 1
    logs = boto3.client("logs", endpoint_url=moto_url, region_name="us-east-1")
    events = logs.get_log_events(logGroupName=group, logStreamName="metricgate")["events"]
    assert len(events) == counters.sent  # one event per point: their dimensions differ


async def test_debug_counts_the_points_it_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "metricgate.debug")
    async with sending(DebugExporter("debug", DebugExporterConfig())) as (queue, counters):
        queue.enqueue(gauges(5))
        queue.enqueue(gauges(2, "h"))
        await wait_until(lambda: counters.sent == 7, timeout=15)
    logged = [r for r in caplog.records if r.getMessage() == "batch"]
    assert sum(r.points for r in logged) == counters.sent  # type: ignore[attr-defined]


async def test_prometheus_counts_what_the_page_shows() -> None:
    config = PrometheusExporterConfig.model_validate({"endpoint": "127.0.0.1:0"})
    exporter = PrometheusExporter("prometheus", config)
    counter = metric("jobs", MetricKind.SUM)
    group = MetricPoints(counter)
    for key, value in (("a", 1.0), ("b", 2.0), ("c", -1.0)):  # a negative counter: dropped
        group.append(INTERNER.intern_series(counter, (("k", key),)), value, time.time_ns())
    async with sending(exporter) as (queue, counters):
        queue.enqueue(Batch([group]))
        dropped = "metricgate_exporter_dropped_points_total"
        await wait_until(
            lambda: counters.value(dropped, reason="invalid_counter_value") == 1, timeout=15
        )
        await wait_until(lambda: counters.sent == 2, timeout=15)
        url = f"http://127.0.0.1:{exporter.port}/metrics"
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            page = await response.text()
    lines = [line for line in page.splitlines() if line.startswith("jobs_total{")]
    assert len(lines) == counters.sent
