"""The cloudwatch exporter end to end against moto's CloudWatch, read back with the AWS API."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from metricgate.config import load_config_text
from metricgate.errors import PartialExportError, PermanentError, RetryableError
from metricgate.exporters.cloudwatch import CloudWatchExporter, CloudWatchExporterConfig
from metricgate.model import (
    INTERNER,
    Batch,
    HistogramPoint,
    MetricKind,
    MetricPoints,
    Temporality,
)
from metricgate.pipeline.host import Host
from metricgate.pipeline.service import Service
from metricgate.telemetry.metrics import SelfMetrics
from tests.support.aws import RESOURCE, one_series_batch
from tests.support.capture import InjectReceiver, registry_with_capture
from tests.support.poll import wait_until

pytestmark = pytest.mark.usefixtures("dummy_credentials")
SCOPE = INTERNER.intern_scope("cw")
S = 1_000_000_000


def _cloudwatch(url: str) -> Any:
    return boto3.client("cloudwatch", endpoint_url=url, region_name="us-east-1")


def _config(url: str, namespace: str, **extra: Any) -> CloudWatchExporterConfig:
    return CloudWatchExporterConfig.model_validate(
        {
            "namespace": namespace,
            "region": "us-east-1",
            "endpoint": url,
            "disable_request_compression": True,
            **extra,
        }
    )


@asynccontextmanager
async def started(config: CloudWatchExporterConfig) -> AsyncIterator[CloudWatchExporter]:
    exporter = CloudWatchExporter("cloudwatch", config)
    await exporter.start(Host(SelfMetrics()))
    try:
        yield exporter
    finally:
        await exporter.shutdown()


def _batch(*args: Any, **kwargs: Any) -> Batch:
    return one_series_batch("cw", *args, **kwargs)


def _stats(url: str, namespace: str, name: str) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    answer = _cloudwatch(url).get_metric_statistics(
        Namespace=namespace,
        MetricName=name,
        Dimensions=[{"Name": "host", "Value": "h1"}],
        StartTime=now - timedelta(hours=1),
        EndTime=now + timedelta(minutes=5),
        Period=3600,
        Statistics=["SampleCount", "Sum", "Minimum", "Maximum"],
    )
    points: list[dict[str, Any]] = answer["Datapoints"]
    return points


def _values(url: str, namespace: str, name: str) -> list[float]:
    now = datetime.now(UTC)
    answer = _cloudwatch(url).get_metric_data(
        MetricDataQueries=[
            {
                "Id": "q",
                "MetricStat": {
                    "Metric": {
                        "Namespace": namespace,
                        "MetricName": name,
                        "Dimensions": [{"Name": "host", "Value": "h1"}],
                    },
                    "Period": 1,
                    "Stat": "Sum",
                },
            }
        ],
        StartTime=now - timedelta(hours=1),
        EndTime=now + timedelta(minutes=5),
        ScanBy="TimestampAscending",
    )
    values: list[float] = answer["MetricDataResults"][0]["Values"]
    return values


async def test_gauge_counter_deltas_and_histogram_read_back(moto_url: str) -> None:
    namespace = f"mg-{uuid.uuid4().hex[:8]}"
    t0 = time.time_ns() - 600 * S
    counter = [
        (5.0, t0 + 10 * S, t0),  # start known: the first delta is 5
        (8.0, t0 + 20 * S, t0),
        (2.0, t0 + 30 * S, t0 + 25 * S),  # reset
        (6.0, t0 + 40 * S, t0 + 25 * S),
    ]
    histogram = HistogramPoint(4, 10.0, (1.0, 5.0), (1, 2, 1), 0.5, 7.0)
    async with started(_config(moto_url, namespace)) as exporter:
        await exporter.export(_batch("temp", MetricKind.GAUGE, [(21.5, t0, 0)], unit="Cel"))
        for point in counter:
            await exporter.export(
                _batch("requests", MetricKind.SUM, [point], Temporality.CUMULATIVE, "{request}")
            )
        await exporter.export(
            _batch("latency", MetricKind.HISTOGRAM, [(histogram, t0, 0)], Temporality.DELTA, "ms")
        )
    assert _values(moto_url, namespace, "temp") == [21.5]
    assert _values(moto_url, namespace, "requests") == [5.0, 3.0, 2.0, 4.0]
    [stats] = _stats(moto_url, namespace, "latency")
    assert (stats["SampleCount"], stats["Sum"], stats["Minimum"], stats["Maximum"]) == (
        4.0,
        10.0,
        0.5,
        7.0,
    )
    assert stats["Unit"] == "Milliseconds"
    listed = _cloudwatch(moto_url).list_metrics(Namespace=namespace)["Metrics"]
    assert sorted(m["MetricName"] for m in listed) == ["latency", "requests", "temp"]


async def test_1001_points_go_out_in_two_requests(moto_url: str) -> None:
    namespace = f"mg-{uuid.uuid4().hex[:8]}"
    now = time.time_ns()
    metric = INTERNER.intern_metric(RESOURCE, SCOPE, "wide", "", MetricKind.GAUGE)
    group = MetricPoints(metric)
    for i in range(1001):
        group.append(INTERNER.intern_series(metric, (("i", str(i)),)), float(i), now)
    calls = 0
    async with started(_config(moto_url, namespace)) as exporter:
        put = exporter._client.put_metric_data

        def counting(**kwargs: Any) -> Any:
            nonlocal calls
            calls += 1
            return put(**kwargs)

        exporter._client.put_metric_data = counting
        await exporter.export(Batch([group]))
    assert calls == 2
    paginator = _cloudwatch(moto_url).get_paginator("list_metrics")
    names = [m for page in paginator.paginate(Namespace=namespace) for m in page["Metrics"]]
    assert len(names) == 1001


async def test_a_retry_resends_only_the_requests_not_accepted(moto_url: str) -> None:
    now = time.time_ns()
    metric = INTERNER.intern_metric(RESOURCE, SCOPE, "split", "", MetricKind.GAUGE)
    group = MetricPoints(metric)
    for i in range(25):
        group.append(INTERNER.intern_series(metric, (("i", str(i)),)), float(i), now)
    batch = Batch([group])
    sent: list[int] = []
    async with started(_config(moto_url, "mg-retry", max_metrics_per_request=10)) as exporter:
        put = exporter._client.put_metric_data

        def flaky(**kwargs: Any) -> Any:
            if len(sent) == 1:
                sent.append(-1)
                raise ClientError(
                    {
                        "Error": {"Code": "Throttling", "Message": "Rate exceeded"},
                        "ResponseMetadata": {"HTTPStatusCode": 400},
                    },
                    "PutMetricData",
                )
            sent.append(len(kwargs["MetricData"]))
            return put(**kwargs)

        exporter._client.put_metric_data = flaky
        with pytest.raises(PartialExportError, match="Throttling") as failure:
            await exporter.export(batch)
        assert failure.value.delivered == 15 and failure.value.remaining.point_count() == 10
        assert await exporter.export(failure.value.remaining) == 10  # no mapping again
    assert sent == [10, -1, 5, 10]


async def test_errors_are_classified(moto_url: str) -> None:
    batch = _batch("g", MetricKind.GAUGE, [(1.0, time.time_ns(), 0)])
    config = _config(moto_url, "mg-errors")
    async with started(config) as exporter:

        def refuse(code: str, status: int) -> Any:
            def put(**_: Any) -> Any:
                error = {"Error": {"Code": code, "Message": "no"}}
                raise ClientError(
                    {**error, "ResponseMetadata": {"HTTPStatusCode": status}}, "PutMetricData"
                )

            return put

        for code, status, kind in [
            ("Throttling", 400, RetryableError),
            ("InternalServiceFault", 500, RetryableError),
            ("InvalidParameterValue", 400, PermanentError),
        ]:
            exporter._client.put_metric_data = refuse(code, status)
            with pytest.raises(kind, match=code):
                await exporter.export(batch)
    unreachable = _config("http://127.0.0.1:9", "mg-errors", timeout="1s")
    async with started(unreachable) as exporter:
        with pytest.raises(RetryableError):
            await exporter.export(batch)


async def test_configured_in_a_pipeline(moto_url: str) -> None:
    namespace = f"mg-{uuid.uuid4().hex[:8]}"
    text = f"""
receivers: {{inject: {{}}}}
exporters:
  cloudwatch:
    namespace: {namespace}
    region: us-east-1
    endpoint: "{moto_url}"
    disable_request_compression: true
service:
  telemetry: {{metrics: {{address: ""}}}}
  pipelines: {{metrics: {{receivers: [inject], exporters: [cloudwatch]}}}}
"""
    service = Service(load_config_text(text, registry_with_capture(), {}))
    await service.start()
    try:
        batch = _batch("up", MetricKind.GAUGE, [(1.0, time.time_ns(), 0)])
        await InjectReceiver.instances["inject"].push(batch)
        stored: list[float] = []

        async def look() -> None:
            stored[:] = await asyncio.to_thread(_values, moto_url, namespace, "up")

        await wait_until(lambda: stored, look, interval=0.05)
    finally:
        await service.shutdown(time.monotonic() + 2)
    assert _values(moto_url, namespace, "up") == [1.0]
