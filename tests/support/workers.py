"""What the `--workers N` process tests share: a pipeline with every kind of state, a gateway
run with workers, and readings of its page, its own metrics and what VictoriaMetrics stored."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from prometheus_client.parser import text_string_to_metric_families

from tests.support.gateway import Gateway, default_ports, run_gateway
from tests.support.poll import block_until
from tests.support.ports import free_port
from tests.support.remote_write import V1_HEADERS, v1
from tests.support.victoria import VictoriaMetricsServer

TEMPLATE = """
receivers:
  otlp:
    protocols:
      http: {{endpoint: "127.0.0.1:{http}"}}
  prometheus_remote_write: {{endpoint: "127.0.0.1:{rw}"}}
processors:
  relabel:
    relabel_configs:
      - {{source_labels: [__name__], regex: 'skip_.*', action: drop}}
      - {{source_labels: [host], target_label: machine}}
  cardinality_limit: {{max_series_per_metric: 6}}
  aggregate:
    rules:
      - match: agg_input
        interval: 1s
        by: [zone]
        outputs: [sum_samples, count_series, max]
        keep_input: true
exporters:
  prometheus: {{endpoint: "127.0.0.1:{prometheus}"}}
  prometheus_remote_write:
    endpoint: "http://127.0.0.1:{store}/api/v1/write"
    external_labels: {{gw: "{gw}"}}
    flush_interval: 50ms
    retry_on_failure: {{initial_interval: 50ms, max_interval: 200ms, max_elapsed_time: 0}}
service:
  pipelines:
    metrics:
      receivers: [otlp, prometheus_remote_write]
      processors: [relabel, cardinality_limit, aggregate]
      exporters: [prometheus, prometheus_remote_write]
  telemetry:
    metrics: {{address: "127.0.0.1:{telemetry}"}}
    logs: {{level: info, format: json}}
"""

NOW_MS = int(time.time() * 1000)


def ports_for(store: int, gw: str) -> dict[str, int | str]:
    return {**default_ports(), "rw": free_port(), "store": store, "gw": gw}


@contextmanager
def run_workers(
    tmp_path: Path, template: str, ports: dict[str, int | str], workers: int
) -> Iterator[Gateway]:
    with run_gateway(
        tmp_path,
        template,
        ports,
        args=("--workers", str(workers)),  # type: ignore[arg-type]
    ) as gateway:
        yield gateway


def remote_write_requests() -> list[bytes]:
    """One request per metric (all its series together, so a stateful processor sees them in
    one batch whichever worker gets the connection)."""
    requests_: list[bytes] = []
    for m in range(16):
        series = [
            ([("__name__", f"rw_metric_{m}"), ("host", f"h{s}"), ("job", "rw")], [(m + s, NOW_MS)])
            for s in range(4)
        ]
        requests_.append(v1(*series))
    limited = [
        ([("__name__", "limited_gauge"), ("id", f"{i:02d}"), ("job", "rw")], [(float(i), NOW_MS)])
        for i in range(10)
    ]
    aggregated = [
        (
            [("__name__", "agg_input"), ("zone", f"z{i % 3}"), ("pod", f"p{i}"), ("job", "rw")],
            [(float(i * 10), NOW_MS)],
        )
        for i in range(12)
    ]
    skipped = [([("__name__", "skip_me"), ("job", "rw")], [(1.0, NOW_MS)])]
    return [*requests_, v1(*limited), v1(*aggregated), v1(*skipped)]


def send_everything(gateway: Gateway) -> None:
    for body in remote_write_requests():
        with requests.Session() as session:  # a new connection each: spread over the workers
            response = session.post(
                gateway.url("rw", "/api/v1/write"), data=body, headers=V1_HEADERS, timeout=10
            )
            assert response.status_code == 204, response.text
    exporter = OTLPMetricExporter(endpoint=gateway.url("http", "/v1/metrics"))
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    resource = Resource.create({"service.name": "checkout", "service.instance.id": "i-1"})
    provider = MeterProvider(metric_readers=[reader], resource=resource)
    meter = provider.get_meter("workers-test")
    for i in range(8):
        meter.create_counter(f"sdk.requests.{i}", unit="{request}").add(
            i + 1, {"route": f"/r{i % 3}"}
        )
    histogram = meter.create_histogram("sdk.latency", unit="ms")
    for value in (3.0, 30.0, 300.0):
        histogram.record(value, {"route": "/r0"})
    assert provider.force_flush(10_000)
    provider.shutdown()


def page_samples(gateway: Gateway) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    samples = {}
    for family in text_string_to_metric_families(gateway.scrape()):
        for sample in family.samples:
            labels = tuple(sorted(sample.labels.items()))
            key = (sample.name, labels)
            assert key not in samples, f"{key} twice on the page"
            samples[key] = sample.value
    return samples


def stored_labels(name: str, labels: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """A page sample's series as VictoriaMetrics stores it."""
    return tuple(sorted((*labels, ("__name__", name))))


def stored_series(store: VictoriaMetricsServer, gw: str) -> dict[tuple[tuple[str, str], ...], str]:
    result = store.query(f'last_over_time({{gw="{gw}"}}[10m])')
    return {
        tuple(sorted((k, v) for k, v in item["metric"].items() if k != "gw")): item["value"][1]
        for item in result
    }


def own_samples(gateway: Gateway, name: str, view: str = "") -> dict[str, float]:
    """Own metric `name`'s samples by label text, from the telemetry page (`view`: a query)."""
    text = requests.get(gateway.url("telemetry", f"/metrics{view}"), timeout=5).text
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name)
    }


def block_until_stored(
    store: VictoriaMetricsServer, gw: str, at_least: int
) -> dict[tuple[tuple[str, str], ...], str]:
    found: dict[tuple[tuple[str, str], ...], str] = {}

    def enough() -> bool:
        found.clear()
        found.update(stored_series(store, gw))
        return len(found) >= at_least

    block_until(enough, 20, f"{at_least} series stored for {gw}", 0.25)
    return found
