"""The cloudwatch exporter's `mode: emf`: EMF events to a file, limits, and Logs against moto."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from metricgate.config import load_config_text
from metricgate.errors import ConfigError, PartialExportError
from metricgate.exporters.cloudwatch import CloudWatchExporterConfig, EmfExporter
from metricgate.exporters.cloudwatch.emf import log_batches
from metricgate.model import (
    INTERNER,
    Batch,
    HistogramPoint,
    MetricKind,
    MetricPoints,
    Temporality,
)
from metricgate.pipeline.host import Host
from metricgate.telemetry.metrics import SelfMetrics
from tests.support.aws import RESOURCE, one_series_batch
from tests.support.capture import registry_with_capture

pytestmark = pytest.mark.usefixtures("dummy_credentials")
SCOPE = INTERNER.intern_scope("cw-emf")
S = 1_000_000_000


def _config(**extra: Any) -> CloudWatchExporterConfig:
    return CloudWatchExporterConfig.model_validate(
        {"mode": "emf", "namespace": "MyApp", "region": "us-east-1", **extra}
    )


async def _export(config: CloudWatchExporterConfig, *batches: Batch) -> EmfExporter:
    exporter = EmfExporter("cloudwatch", config)
    await exporter.start(Host(SelfMetrics()))
    try:
        for batch in batches:
            await exporter.export(batch)
    finally:
        await exporter.shutdown()
    return exporter


def _batch(*args: Any, **kwargs: Any) -> Batch:
    return one_series_batch("cw-emf", *args, **kwargs)


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _aws(ts: int, dims: list[str], metrics: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "Timestamp": ts // 1_000_000,
        "CloudWatchMetrics": [
            {
                "Namespace": "MyApp",
                "Dimensions": [dims],
                "Metrics": [{"Name": n, "Unit": u, "StorageResolution": 60} for n, u in metrics],
            }
        ],
    }


async def test_gauge_counter_delta_and_histogram_to_a_file(tmp_path: Path) -> None:
    path = tmp_path / "emf.log"
    t0 = time.time_ns() - 600 * S
    histogram = HistogramPoint(4, 10.0, (1.0, 5.0), (1, 2, 1), 0.5, 7.0)
    await _export(
        _config(output="file", path=str(path)),
        _batch("temp", MetricKind.GAUGE, [(21.5, t0, 0)], unit="s"),
        _batch("requests", MetricKind.SUM, [(5.0, t0 + S, t0)], Temporality.CUMULATIVE, "{r}"),
        _batch("requests", MetricKind.SUM, [(8.0, t0 + 2 * S, t0)], Temporality.CUMULATIVE, "{r}"),
        _batch("latency", MetricKind.HISTOGRAM, [(histogram, t0, 0)], Temporality.DELTA, "ms"),
    )
    gauge, first, second, hist = _lines(path)
    assert gauge == {"_aws": _aws(t0, ["host"], [("temp", "Seconds")]), "host": "h1", "temp": 21.5}
    assert first == {
        "_aws": _aws(t0 + S, ["host"], [("requests", "Count")]),
        "host": "h1",
        "requests": 5.0,
    }
    assert second["requests"] == 3.0  # the delta
    assert hist == {
        "_aws": _aws(
            t0,
            ["host"],
            [
                ("latency_count", "Count"),
                ("latency_sum", "Milliseconds"),
                ("latency_min", "Milliseconds"),
                ("latency_max", "Milliseconds"),
            ],
        ),
        "host": "h1",
        "latency_count": 4.0,
        "latency_sum": 10.0,
        "latency_min": 0.5,
        "latency_max": 7.0,
    }


async def test_a_failed_write_is_retried_as_written_without_mapping_again(tmp_path: Path) -> None:
    path = tmp_path / "not-yet" / "emf.log"
    t0 = time.time_ns() - 600 * S
    counter = _batch("requests", MetricKind.SUM, [(5.0, t0 + S, t0)], Temporality.CUMULATIVE)
    exporter = EmfExporter("cloudwatch", _config(output="file", path=str(path)))
    await exporter.start(Host(SelfMetrics()))
    try:
        with pytest.raises(PartialExportError) as failure:
            await exporter.export(counter)  # the directory is missing: retryable
        path.parent.mkdir()
        assert await exporter.export(failure.value.remaining) == 1
    finally:
        await exporter.shutdown()
    # Mapped once: the counter's first value is still its delta (a second mapping would say 0).
    assert [line["requests"] for line in _lines(path)] == [5.0]


async def test_metrics_sharing_dimensions_and_time_share_events(tmp_path: Path) -> None:
    path = tmp_path / "emf.log"
    now = time.time_ns()
    groups = []
    for i in range(150):
        metric = INTERNER.intern_metric(RESOURCE, SCOPE, f"m{i}", "", MetricKind.GAUGE)
        group = MetricPoints(metric)
        group.append(INTERNER.intern_series(metric, (("host", "h1"),)), float(i), now)
        groups.append(group)
    other = _batch("m0", MetricKind.GAUGE, [(1.0, now, 0)], attributes=(("host", "h2"),))
    await _export(_config(output="file", path=str(path)), Batch([*groups, *other.metrics]))
    events = _lines(path)
    assert len(events) == 3  # 100 + 50 for h1, 1 for h2
    sizes = sorted(len(e["_aws"]["CloudWatchMetrics"][0]["Metrics"]) for e in events)
    assert sizes == [1, 50, 100]
    values = {k: v for e in events if e["host"] == "h1" for k, v in e.items() if k[0] == "m"}
    assert values == {f"m{i}": float(i) for i in range(150)}


async def test_31_dimension_keys_keep_30(tmp_path: Path) -> None:
    path = tmp_path / "emf.log"
    attributes = tuple((f"k{i:02}", f"v{i}") for i in range(31))
    batch = _batch("wide", MetricKind.GAUGE, [(1.0, time.time_ns(), 0)], attributes=attributes)
    host = Host(SelfMetrics())
    exporter = EmfExporter("cloudwatch", _config(output="file", path=str(path)))
    await exporter.start(host)
    await exporter.export(batch)
    [event] = _lines(path)
    [keys] = event["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
    assert keys == [f"k{i:02}" for i in range(30)]
    assert "k30" not in event and event["k29"] == "v29"
    dropped = host.telemetry.exporter_dropped.labels("cloudwatch", "dimensions_over_30")
    assert dropped._value.get() == 1


def test_log_batches_respect_bytes_and_count() -> None:
    events = [{"_aws": {"Timestamp": 1000 + i}, "x": "y" * 100} for i in range(30)]
    dropped: Counter[str] = Counter()
    batches = log_batches(events, dropped, max_events=7)
    assert [len(b) for b in batches] == [7, 7, 7, 7, 2]
    size = len(json.dumps(events[0], separators=(",", ":"))) + 26
    batches = log_batches(events, dropped, max_bytes=3 * size)
    assert [len(b) for b in batches] == [3] * 10
    assert log_batches(events[:1], dropped, max_bytes=size - 1) == []
    assert dropped["event_too_large"] == 1


async def test_logs_output_against_moto(moto_url: str) -> None:
    group = f"/mg/{uuid.uuid4().hex[:8]}"
    config = _config(
        endpoint=moto_url, log_group_name=group, disable_request_compression=True, timeout="5s"
    )
    now = time.time_ns()
    await _export(
        config,
        _batch("temp", MetricKind.GAUGE, [(21.5, now - S, 0)]),
        _batch("temp", MetricKind.GAUGE, [(22.5, now, 0)]),
    )
    logs = boto3.client("logs", endpoint_url=moto_url, region_name="us-east-1")
    answer = logs.get_log_events(logGroupName=group, logStreamName="metricgate", startFromHead=True)
    messages = [json.loads(e["message"]) for e in answer["events"]]
    assert [m["temp"] for m in messages] == [21.5, 22.5]
    assert messages[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "MyApp"
    assert [e["timestamp"] for e in answer["events"]] == [(now - S) // 1_000_000, now // 1_000_000]


async def test_logs_throttling_is_retryable_and_resends_only_what_is_owed(moto_url: str) -> None:
    group = f"/mg/{uuid.uuid4().hex[:8]}"
    config = _config(endpoint=moto_url, log_group_name=group, disable_request_compression=True)
    batch = _batch("g", MetricKind.GAUGE, [(1.0, time.time_ns(), 0)])
    exporter = EmfExporter("cloudwatch", config)
    await exporter.start(Host(SelfMetrics()))
    put = exporter._client.put_log_events
    calls: list[str] = []

    def flaky(**kwargs: Any) -> Any:
        if not calls:
            calls.append("throttled")
            raise ClientError(
                {
                    "Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"},
                    "ResponseMetadata": {"HTTPStatusCode": 400},
                },
                "PutLogEvents",
            )
        calls.append("sent")
        return put(**kwargs)

    exporter._client.put_log_events = flaky
    try:
        with pytest.raises(PartialExportError, match="ThrottlingException") as failure:
            await exporter.export(batch)
        assert failure.value.remaining.point_count() == 1
        assert await exporter.export(failure.value.remaining) == 1
    finally:
        await exporter.shutdown()
    assert calls == ["throttled", "sent"]
    logs = boto3.client("logs", endpoint_url=moto_url, region_name="us-east-1")
    answer = logs.get_log_events(logGroupName=group, logStreamName="metricgate")
    assert [json.loads(e["message"])["g"] for e in answer["events"]] == [1.0]


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ("output: file", "path"),
        ("output: logs", "log_group_name"),
        ("log_group_name: 'a b'", "log_group_name"),
    ],
)
def test_emf_config_errors_name_the_key(settings: str, key: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config_text(
            f"""
receivers: {{inject: {{}}}}
exporters: {{cloudwatch: {{mode: emf, namespace: N, {settings}}}}}
service: {{pipelines: {{metrics: {{receivers: [inject], exporters: [cloudwatch]}}}}}}
""",
            registry_with_capture(),
        )
    assert f"exporters.cloudwatch.{key}" in str(raised.value)


def test_log_batches_span_at_most_24_hours() -> None:
    day = 24 * 3600 * 1000
    events = [{"_aws": {"Timestamp": t}} for t in (0, day, day + 1, 2 * day + 5)]
    batches = log_batches(events, Counter())
    assert [[e["timestamp"] for e in b] for b in batches] == [[0, day], [day + 1], [2 * day + 5]]


async def test_stdout_output_writes_one_json_object_a_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    now = time.time_ns()
    await _export(
        _config(output="stdout"),
        _batch("up", MetricKind.GAUGE, [(1.0, now, 0)]),
        _batch("down", MetricKind.GAUGE, [(0.0, now, 0)], attributes=(("host", "h2"),)),
    )
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(e["host"], e.get("up"), e.get("down")) for e in lines] == [
        ("h1", 1.0, None),
        ("h2", None, 0.0),
    ]


async def test_existing_log_group_and_stream_are_reused(moto_url: str) -> None:
    group = f"/mg/{uuid.uuid4().hex[:8]}"
    logs = boto3.client("logs", endpoint_url=moto_url, region_name="us-east-1")
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    config = _config(endpoint=moto_url, log_group_name=group, log_stream_name="s")
    await _export(config, _batch("g", MetricKind.GAUGE, [(2.0, time.time_ns(), 0)]))
    answer = logs.get_log_events(logGroupName=group, logStreamName="s")
    assert [json.loads(e["message"])["g"] for e in answer["events"]] == [2.0]


def test_mode_emf_builds_the_emf_exporter(tmp_path: Path) -> None:
    config = load_config_text(
        f"""
receivers: {{inject: {{}}}}
exporters:
  cloudwatch: {{mode: emf, namespace: N, output: file, path: "{tmp_path / "x.log"}"}}
service: {{pipelines: {{metrics: {{receivers: [inject], exporters: [cloudwatch]}}}}}}
""",
        registry_with_capture(),
    )
    spec = config.exporters["cloudwatch"]
    assert isinstance(spec.config, CloudWatchExporterConfig)
    assert (spec.config.output, spec.config.log_stream_name) == ("file", "metricgate")
    assert isinstance(spec.factory.create("cloudwatch", spec.config, None), EmfExporter)
