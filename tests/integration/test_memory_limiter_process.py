"""The memory limiter in a real process: refusal with Retry-After, bounded RSS, nothing lost."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import Gauge, Metric, NumberDataPoint
from prometheus_client.parser import text_string_to_metric_families

from tests.support.gateway import run_gateway

pytestmark = pytest.mark.integration

TEMPLATE = """
receivers:
  otlp:
    protocols:
      http: {{endpoint: "127.0.0.1:{http}"}}
processors:
  memory_limiter: {{limit_mib: {limit}, spike_limit_mib: 40, check_interval: 20ms, retry_after: 2s}}
exporters:
  prometheus: {{endpoint: "127.0.0.1:{prometheus}"}}
service:
  pipelines:
    metrics: {{receivers: [otlp], processors: [memory_limiter], exporters: [prometheus]}}
  telemetry:
    metrics: {{address: "127.0.0.1:{telemetry}"}}
"""


def request_with_new_series(start: int, count: int) -> bytes:
    request = ExportMetricsServiceRequest()
    metric = Metric(name="flood")
    points = []
    now = time.time_ns()
    for i in range(start, start + count):
        points.append(
            NumberDataPoint(
                time_unix_nano=now,
                as_double=1.0,
                attributes=[
                    KeyValue(key="user", value=AnyValue(string_value=f"user-{i:08d}")),
                    KeyValue(key="padding", value=AnyValue(string_value="x" * 200 + str(i))),
                ],
            )
        )
    metric.gauge.CopyFrom(Gauge(data_points=points))
    request.resource_metrics.add().scope_metrics.add().metrics.append(metric)
    return request.SerializeToString()


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise AssertionError(field)


def test_load_over_the_limit_is_refused_and_nothing_accepted_is_lost(tmp_path: Path) -> None:
    probe_ports = None
    with run_gateway(tmp_path, TEMPLATE.replace("{limit}", "4096")) as probe:
        baseline = rss_mib(probe.process.pid)
        probe_ports = probe.ports
    assert probe_ports
    limit = int(baseline) + 100  # soft limit 60 MiB above what an idle gateway uses
    with run_gateway(tmp_path, TEMPLATE.replace("{limit}", str(limit))) as gateway:
        url = gateway.url("http", "/v1/metrics")
        accepted = 0
        refusals: list[requests.Response] = []
        next_series = 0
        for _ in range(60):
            body = request_with_new_series(next_series, 20_000)
            response = requests.post(
                url, data=body, headers={"Content-Type": "application/x-protobuf"}, timeout=30
            )
            if response.status_code == 200:
                accepted += 20_000
                next_series += 20_000
            else:
                refusals.append(response)
                if len(refusals) >= 3:
                    break
                time.sleep(0.1)
        assert refusals, f"never refused; RSS {rss_mib(gateway.process.pid):.0f} MiB"
        assert all(r.status_code == 429 for r in refusals)
        assert all(r.headers["Retry-After"] == "2" for r in refusals)
        assert "memory limit" in refusals[0].text
        peak = rss_mib(gateway.process.pid, "VmHWM")
        assert peak < limit, f"peak RSS {peak:.0f} MiB over the hard limit {limit} MiB"
        deadline = time.monotonic() + 20
        while True:
            page = gateway.scrape()
            series = sum(
                len(family.samples)
                for family in text_string_to_metric_families(page)
                if family.name == "flood"
            )
            if series == accepted or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert series == accepted  # every point a client got a 200 for is on the page
        own = requests.get(gateway.url("telemetry", "/metrics"), timeout=10).text
        assert 'metricgate_memory_limiter_refusing{processor="memory_limiter"}' in own
