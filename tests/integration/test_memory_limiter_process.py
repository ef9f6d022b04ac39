"""The memory limiter in a real process: refusal with Retry-After, bounded RSS, nothing lost, and
recovery after a flood of new series."""

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
from prometheus_client.samples import Sample

from tests.support.gateway import Gateway, run_gateway
from tests.support.memory import status_kib
from tests.support.poll import block_until

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
    return status_kib(pid, f"{field}:") / 1024


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
                time.sleep(0.1)  # a client pausing after a 429, as clients do (not a wait)
        assert refusals, f"never refused; RSS {rss_mib(gateway.process.pid):.0f} MiB"
        assert all(r.status_code == 429 for r in refusals)
        assert all(r.headers["Retry-After"] == "2" for r in refusals)
        assert "memory limit" in refusals[0].text
        peak = rss_mib(gateway.process.pid, "VmHWM")
        assert peak < limit, f"peak RSS {peak:.0f} MiB over the hard limit {limit} MiB"

        def series_on_page() -> int:
            return sum(
                len(family.samples)
                for family in text_string_to_metric_families(gateway.scrape())
                if family.name == "flood"
            )

        # every point a client got a 200 for reaches the page
        block_until(lambda: series_on_page() == accepted, 20, f"{accepted} series on the page", 0.2)
        own = requests.get(gateway.url("telemetry", "/metrics"), timeout=10).text
        assert "metricgate_memory_limiter_refusing " in own


FLOOD = """
receivers:
  otlp:
    protocols:
      http: {{endpoint: "127.0.0.1:{http}"}}
processors:
  cardinality_limit: {{max_series: 10000, max_series_per_metric: 1000}}
  PROCESSOR
exporters:
  prometheus: {{endpoint: "127.0.0.1:{prometheus}"}}
service:
  SERVICE
  pipelines:
    metrics: {{receivers: [otlp], processors: [PIPELINE], exporters: [prometheus]}}
  telemetry:
    metrics: {{address: "127.0.0.1:{telemetry}"}}
"""
LIMITS = "memory_limiter: {{limit_mib: 200, spike_limit_mib: 40}}"


def flood_config(form: str) -> str:
    """Issue 11's flood config, with the limiter as the processor (deprecated) or the service
    setting."""
    if form == "processor":
        return (
            FLOOD.replace("PROCESSOR", LIMITS)
            .replace("SERVICE", "")
            .replace("PIPELINE", "memory_limiter, cardinality_limit")
        )
    return (
        FLOOD.replace("PROCESSOR", "")
        .replace("SERVICE", LIMITS)
        .replace("PIPELINE", "cardinality_limit")
    )


def well_behaved(gateway: Gateway, value: float) -> int:
    now = time.time_ns()
    return gateway.post_gauge("steady", [({"host": f"host-{i}"}, value, now) for i in range(10)])


@pytest.mark.parametrize("form", ["processor", "service"])
def test_a_cardinality_flood_does_not_lock_the_gateway_out(tmp_path: Path, form: str) -> None:
    with run_gateway(tmp_path, flood_config(form)) as gateway:
        url = gateway.url("http", "/v1/metrics")
        assert well_behaved(gateway, 1.0) == 200  # admitted before the flood
        statuses = []
        for round_ in range(200):  # 200 requests of 1,000 new series each
            body = request_with_new_series(round_ * 1000, 1000)
            response = requests.post(
                url, data=body, headers={"Content-Type": "application/x-protobuf"}, timeout=30
            )
            statuses.append(response.status_code)
        assert set(statuses) <= {200, 429}
        # the flood reached the limit: refused, or released the caches to stay under it
        released = gateway.own_metric("metricgate_memory_limiter_releases")
        assert 429 in statuses or released, f"limit never reached: {gateway.logs()[-2000:]}"
        deadline = time.monotonic() + 30  # the well-behaved client is back within 30 s

        def left() -> float:
            return max(0.1, deadline - time.monotonic())

        block_until(lambda: well_behaved(gateway, 2.0) == 200, left(), "a 200 after the flood")
        page: list[Sample] = []

        def steady_updated() -> bool:
            page[:] = [
                sample
                for family in text_string_to_metric_families(gateway.scrape())
                for sample in family.samples
                if family.name in ("steady", "flood")
            ]
            steady = {s.labels["host"]: s.value for s in page if s.name == "steady"}
            return steady == {f"host-{i}": 2.0 for i in range(10)}

        block_until(steady_updated, left(), "the well-behaved client's data on the page")
        # capped per metric (plus the limiter's one overflow series)
        assert 1000 <= sum(1 for s in page if s.name == "flood") <= 1001
        block_until(
            lambda: gateway.own_metric("metricgate_memory_limiter_refusing") == 0,
            left(),
            "metricgate_memory_limiter_refusing back to 0",
        )
