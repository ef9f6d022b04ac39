"""End to end: one histogram or summary keeps one identity on every output, and no output holds a
series twice.

metricgate (subprocess) receives OTLP and Pushgateway pushes and hands them to its scrape page and
to remote-write; a real Prometheus 2.42 both scrapes the page (OpenMetrics, as Prometheus asks for
it first) and receives the remote-write (tagged `via="rw"` by the exporter's external labels).
The `le` and `quantile` label values stored from both paths must be the same strings, those Go's
client library and the Pushgateway write (`1`, `1e+06`), and Prometheus must never see a sample
twice. The page itself is linted with `promtool check metrics`.
"""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb
from prometheus_client.parser import text_string_to_metric_families

from tests.receivers.otlp_data import key_values
from tests.support.binaries import require_binary
from tests.support.gateway import Gateway, default_ports, run_gateway
from tests.support.ports import free_port
from tests.support.prometheus import PrometheusServer, run_prometheus

pytestmark = pytest.mark.integration

TEMPLATE = """
receivers:
  otlp:
    protocols:
      http: {{endpoint: "127.0.0.1:{http}"}}
  pushgateway: {{endpoint: "127.0.0.1:{pushgateway}"}}
exporters:
  prometheus: {{endpoint: "127.0.0.1:{prometheus}", metric_expiration: 10m}}
  prometheus_remote_write:
    endpoint: "http://127.0.0.1:{remote}/api/v1/write"
    flush_interval: 50ms
    external_labels: {{via: rw}}
service:
  pipelines:
    metrics: {{receivers: [otlp, pushgateway], exporters: [prometheus, prometheus_remote_write]}}
  telemetry:
    metrics: {{address: "127.0.0.1:{telemetry}"}}
"""

BOUNDS = [0.005, 1.0, 10.0, 1e6]
EXPECTED_LE = {"0.005", "1", "10", "1e+06", "+Inf"}

# A push as prom-client's Pushgateway class sends it: integral bounds without a decimal point.
PUSHED = """\
# HELP job_duration_seconds How long the job ran.
# TYPE job_duration_seconds histogram
job_duration_seconds_bucket{le="1"} 2
job_duration_seconds_bucket{le="5"} 3
job_duration_seconds_bucket{le="+Inf"} 3
job_duration_seconds_sum 4.5
job_duration_seconds_count 3
"""


def otlp_request(now_ns: int) -> bytes:
    """A histogram with bounds from 0.005 to 1e6, and a summary listing quantile 0.5 twice."""
    histogram = pb.Metric(name="upload.size", unit="By", description="Upload sizes.")
    histogram.histogram.aggregation_temporality = pb.AGGREGATION_TEMPORALITY_CUMULATIVE
    histogram.histogram.data_points.add(
        start_time_unix_nano=now_ns - 10**9,
        time_unix_nano=now_ns,
        count=10,
        sum=2e6,
        explicit_bounds=BOUNDS,
        bucket_counts=[1, 2, 3, 3, 1],
    )
    summary = pb.Metric(name="rpc.duration", unit="s", description="RPC durations.")
    point = summary.summary.data_points.add(time_unix_nano=now_ns, count=4, sum=3.0)
    for quantile, value in ((0.5, 0.1), (0.5, 0.2), (0.9, 0.7)):
        point.quantile_values.add(quantile=quantile, value=value)
    request = ExportMetricsServiceRequest()
    resource_metrics = request.resource_metrics.add()
    resource_metrics.resource.attributes.extend(key_values({"service.name": "uploader"}))
    resource_metrics.scope_metrics.add().metrics.extend([histogram, summary])
    return request.SerializeToString()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, PrometheusServer]]:
    tmp: Path = tmp_path_factory.mktemp("identity")
    ports = {**default_ports(), "pushgateway": free_port()}
    with run_prometheus(
        tmp,
        scrape_targets=[f"127.0.0.1:{ports['prometheus']}"],
        extra_args=["--web.enable-remote-write-receiver"],
    ) as prometheus:
        ports["remote"] = prometheus.port
        with run_gateway(tmp, TEMPLATE, ports) as gateway:
            response = requests.post(
                gateway.url("http", "/v1/metrics"),
                data=otlp_request(time.time_ns()),
                headers={"Content-Type": "application/x-protobuf"},
                timeout=10,
            )
            assert response.status_code == 200, response.text
            pushed = requests.put(
                gateway.url("pushgateway", "/metrics/job/nightly"), data=PUSHED, timeout=10
            )
            assert pushed.status_code == 200, pushed.text
            yield gateway, prometheus


def label_values(
    prometheus: PrometheusServer, selector: str, label: str, count: int
) -> dict[str, set[str]]:
    """`label` values of the series `selector` picks, by path (`scrape` or `rw`)."""
    found = prometheus.wait_for(selector, timeout=30.0, min_results=2 * count)
    by_path: dict[str, set[str]] = {"scrape": set(), "rw": set()}
    for series in found:
        by_path[series["metric"].get("via", "scrape")].add(series["metric"][label])
    return by_path


def test_bounds_are_spelled_alike_on_the_page_and_over_remote_write(
    stack: tuple[Gateway, PrometheusServer],
) -> None:
    gateway, prometheus = stack
    le = label_values(prometheus, "upload_size_bytes_bucket", "le", len(EXPECTED_LE))
    assert le == {"scrape": EXPECTED_LE, "rw": EXPECTED_LE}
    page = gateway.scrape()
    assert 'upload_size_bytes_bucket{job="uploader",le="1e+06"' in page
    openmetrics = requests.get(
        gateway.url("prometheus", "/metrics"),
        headers={"Accept": "application/openmetrics-text; version=1.0.0"},
        timeout=10,
    ).text
    assert openmetrics.endswith("# EOF\n") and 'le="1e+06"' in openmetrics


def test_a_pushed_histogram_keeps_the_bounds_the_client_wrote(
    stack: tuple[Gateway, PrometheusServer],
) -> None:
    _, prometheus = stack
    le = label_values(prometheus, 'job_duration_seconds_bucket{job="nightly"}', "le", 3)
    assert le == {"scrape": {"1", "5", "+Inf"}, "rw": {"1", "5", "+Inf"}}


def test_a_repeated_quantile_is_one_series_holding_the_last_value(
    stack: tuple[Gateway, PrometheusServer],
) -> None:
    gateway, prometheus = stack
    found = prometheus.wait_for('rpc_duration_seconds{quantile="0.5"}', min_results=2)
    assert sorted((s["metric"].get("via", "scrape"), s["value"][1]) for s in found) == [
        ("rw", "0.2"),
        ("scrape", "0.2"),
    ]
    page = gateway.scrape()
    assert page.count('rpc_duration_seconds{job="uploader",quantile="0.5"}') == 1


def test_no_series_twice_and_promtool_accepts_the_page(
    stack: tuple[Gateway, PrometheusServer],
) -> None:
    gateway, prometheus = stack
    prometheus.wait_for('rpc_duration_seconds{quantile="0.9"}', min_results=2)
    page = gateway.scrape()
    samples = Counter(
        (sample.name, frozenset(sample.labels.items()))
        for family in text_string_to_metric_families(page)
        for sample in family.samples
    )
    assert [key for key, seen in samples.items() if seen > 1] == []
    lint = subprocess.run(
        [require_binary("promtool"), "check", "metrics"],
        input=page.encode(),
        capture_output=True,
        timeout=30,
    )
    assert lint.returncode == 0, lint.stdout.decode() + lint.stderr.decode()
    own = [
        sample
        for family in text_string_to_metric_families(
            requests.get(f"{prometheus.url}/metrics", timeout=10).text
        )
        for sample in family.samples
    ]
    duplicates = {
        sample.name: sample.value
        for sample in own
        if sample.name.startswith("prometheus_target_scrapes_sample_duplicate_timestamp")
        or sample.name.startswith("prometheus_target_scrapes_sample_out_of_order")
    }
    assert duplicates and not any(duplicates.values()), duplicates
    writes = {
        sample.labels["code"]: sample.value
        for sample in own
        if sample.name == "prometheus_http_requests_total"
        and sample.labels.get("handler") == "/api/v1/write"
    }
    assert writes.get("204") and set(writes) == {"204"}, writes
