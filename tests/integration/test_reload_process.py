"""Hot reload of a real `metricgate run` process: SIGHUP, `POST /-/reload`, and reloading under
load with every accepted point counted at a real VictoriaMetrics.

The load test sends OTLP/HTTP requests at a steady rate over one keep-alive connection while the
config is reloaded 20 times (the processors of one pipeline alternate, an exporter is added and
removed, one config is invalid). The pipeline feeding the Prometheus page and VictoriaMetrics
never changes: every point the gateway accepted must arrive there (VictoriaMetrics deduplicates
same-timestamp samples, so a retried request cannot count twice), no request may fail, and no
scrape of the page may miss the series.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import requests
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

from tests.support.gateway import Gateway, default_ports, render_config, run_gateway
from tests.support.poll import block_until
from tests.support.ports import free_port
from tests.support.victoria import VictoriaMetricsServer, run_victoria_metrics

TEMPLATE = """
receivers:
  otlp:
    protocols:
      http: {{endpoint: "127.0.0.1:{http}"}}
processors:
  cardinality_limit: {{max_series: {max_series}}}
  attributes/mark: {{actions: [{{key: reload, value: "{mark}", action: upsert}}]}}
exporters:
  prometheus: {{endpoint: "127.0.0.1:{prometheus}"}}
  prometheus_remote_write/vm:
    endpoint: "http://127.0.0.1:{victoria}/api/v1/write"
    flush_interval: 50ms
  prometheus/extra: {{endpoint: "127.0.0.1:{extra}"}}
service:
  pipelines:
    metrics/kept:
      receivers: [otlp]
      exporters: [prometheus, prometheus_remote_write/vm]
    metrics/changing:
      receivers: [otlp]
      processors: [{processors}]
      exporters: [{changing_exporters}]
  telemetry:
    metrics: {{address: "127.0.0.1:{telemetry}"}}
    logs: {{level: info, format: json}}
"""
"""The config of reload number `n`: the processors of `metrics/changing` alternate and
`prometheus/extra` comes and goes; `metrics/kept` never changes."""


def variant(ports: dict[str, int], n: int) -> str:
    processors = ("cardinality_limit", "attributes/mark, cardinality_limit")[n % 2]
    exporters = "prometheus" if n % 4 < 2 else "prometheus, prometheus/extra"
    return render_config(
        TEMPLATE,
        {
            **ports,
            "max_series": 1000 + n,
            "mark": f"m{n}",
            "processors": processors,
            "changing_exporters": exporters,
        },  # type: ignore[dict-item]
    )


def literal(config: str) -> str:
    """`config` as a `run_gateway` template that renders to itself."""
    return config.replace("{", "{{").replace("}", "}}")


def otlp_request(sequence: int, time_ns: int) -> bytes:
    request = ExportMetricsServiceRequest()
    resource = request.resource_metrics.add()
    resource.resource.attributes.add(key="service.name").value.string_value = "load"
    metric = resource.scope_metrics.add().metrics.add(name="reload_load")
    point = metric.gauge.data_points.add(time_unix_nano=time_ns, as_double=float(sequence))
    point.attributes.add(key="sender").value.string_value = "one"
    return request.SerializeToString()


class Sender(threading.Thread):
    """Posts one point every `interval` over one keep-alive connection; counts the answers."""

    def __init__(self, url: str, interval: float = 0.005) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.interval = interval
        self.accepted = 0
        self.failures: list[str] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        session = requests.Session()
        base_ms = int(time.time() * 1000) - 60_000
        sequence = 0
        while not self.stopping.is_set():
            sequence += 1
            body = otlp_request(sequence, (base_ms + sequence) * 1_000_000)
            try:
                response = session.post(
                    self.url,
                    data=body,
                    headers={"Content-Type": "application/x-protobuf"},
                    timeout=10,
                )
            except requests.RequestException as exc:
                self.failures.append(repr(exc))
            else:
                if response.status_code == 200:
                    self.accepted += 1
                else:
                    self.failures.append(f"{response.status_code}: {response.text[:200]}")
            time.sleep(self.interval)


class Scraper(threading.Thread):
    """Scrapes the Prometheus page continuously; records scrapes missing the series."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.scrapes = 0
        self.missing: list[str] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        session = requests.Session()
        while not self.stopping.is_set():
            try:
                text = session.get(self.url, timeout=10).text
            except requests.RequestException as exc:
                self.missing.append(repr(exc))
                continue
            self.scrapes += 1
            if "reload_load{" not in text:
                self.missing.append(text[:300])
            time.sleep(0.01)


def reload_gauges(gateway: Gateway) -> tuple[float, float]:
    return (
        gateway.own_metric("metricgate_config_last_reload_successful"),
        gateway.own_metric("metricgate_config_last_reload_success_timestamp_seconds"),
    )


def test_reload_under_load_loses_nothing(tmp_path: Path) -> None:
    with run_victoria_metrics(tmp_path, dedup=True) as victoria:
        ports = {**default_ports(), "victoria": victoria.port, "extra": free_port()}
        with run_gateway(tmp_path, literal(variant(ports, 0)), ports) as gateway:
            sender = Sender(gateway.url("http", "/v1/metrics"))
            sender.start()
            block_until(lambda: sender.accepted > 0, what="the first point accepted")
            scraper = Scraper(gateway.url("prometheus", "/metrics"))
            block_until(lambda: "reload_load{" in gateway.scrape(), what="the series on the page")
            scraper.start()
            reloads = 0
            for n in range(1, 21):
                if n == 13:
                    gateway.config_path.write_text("service: {pipelines: {}}\nbogus: 1\n")
                else:
                    gateway.config_path.write_text(variant(ports, n))
                if n % 3:
                    answer = requests.post(gateway.url("telemetry", "/-/reload"), timeout=30)
                    assert answer.status_code == (400 if n == 13 else 200), answer.text
                else:
                    gateway.process.send_signal(signal.SIGHUP)
                    expected = 0.0 if n == 13 else 1.0
                    block_until(lambda e=expected: reload_gauges(gateway)[0] == e, what="reload")
                reloads += 1
                time.sleep(0.1)
            sender.stopping.set()
            sender.join(30)
            scraper.stopping.set()
            scraper.join(30)
            assert reloads == 20
            assert sender.failures == []
            assert scraper.missing == [] and scraper.scrapes > 10
            accepted = sender.accepted
            assert accepted > 100
            block_until(
                lambda: victoria_count(victoria) == accepted,
                timeout=30,
                what=f"{accepted} points at VictoriaMetrics (has {victoria_count(victoria)})",
            )
            assert reload_gauges(gateway)[0] == 1.0
            logs = gateway.logs()
            assert "bogus: unknown key" in logs
            assert logs.count("config reloaded: ") == 19


def victoria_count(victoria: VictoriaMetricsServer) -> int:
    result = victoria.query("sum(count_over_time(reload_load[1h]))")
    return int(float(result[0]["value"][1])) if result else 0


SIGHUP_TEMPLATE = """
receivers:
  otlp:
    protocols:
      http: {{endpoint: "127.0.0.1:{http}"}}
exporters:
  prometheus: {{endpoint: "127.0.0.1:{prometheus}"}}
  prometheus/b: {{endpoint: "127.0.0.1:{extra}"}}
service:
  watch_config: {watch}
  pipelines:
    metrics: {{receivers: [otlp], exporters: [{exporters}]}}
  telemetry:
    metrics: {{address: "127.0.0.1:{telemetry}"}}
    logs: {{level: info, format: json}}
"""


def sighup_config(ports: dict[str, int], exporters: str, watch: bool = False) -> str:
    values = {**ports, "exporters": exporters, "watch": str(watch).lower()}
    return render_config(SIGHUP_TEMPLATE, values)  # type: ignore[arg-type]


def serves(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


def test_sighup_applies_a_valid_config_and_refuses_an_invalid_one(tmp_path: Path) -> None:
    ports = {**default_ports(), "extra": free_port()}
    with run_gateway(tmp_path, literal(sighup_config(ports, "prometheus")), ports) as gateway:
        extra = f"http://127.0.0.1:{ports['extra']}/metrics"
        successful, started_at = reload_gauges(gateway)
        assert successful == 1.0 and started_at > 0  # the start counts as a load
        assert not serves(extra)
        assert gateway.post_gauge("before", [({}, 1.0, time.time_ns())]) == 200

        gateway.config_path.write_text(sighup_config(ports, "prometheus, prometheus/b"))
        gateway.process.send_signal(signal.SIGHUP)
        block_until(lambda: serves(extra), what="prometheus/b listening after SIGHUP")
        block_until(lambda: reload_gauges(gateway)[1] > started_at, what="success timestamp")
        assert "\nbefore 1" in gateway.scrape()  # the page kept its series
        assert gateway.post_gauge("after", [({}, 1.0, time.time_ns())]) == 200
        block_until(lambda: "\nafter 1" in requests.get(extra, timeout=2).text, what="new exporter")

        gateway.config_path.write_text(
            sighup_config(ports, "prometheus, prometheus/missing").replace(
                "watch_config", "watch_konfig"
            )
        )
        gateway.process.send_signal(signal.SIGHUP)
        block_until(lambda: reload_gauges(gateway)[0] == 0.0, what="the failure gauge")
        logs = gateway.logs()
        assert "service.watch_konfig" in logs
        assert "references exporter 'prometheus/missing'" in logs
        assert serves(extra) and gateway.process.poll() is None  # nothing changed

        gateway.config_path.write_text(sighup_config(ports, "prometheus"))
        gateway.process.send_signal(signal.SIGHUP)
        block_until(lambda: not serves(extra), what="prometheus/b removed")
        assert reload_gauges(gateway)[0] == 1.0
        own = requests.get(gateway.url("telemetry", "/metrics"), timeout=5).text
        assert 'metricgate_exporter_active_series{exporter="prometheus"}' in own
        for gauge in ("metricgate_exporter_active_series", "metricgate_exporter_queue_size"):
            assert f'{gauge}{{exporter="prometheus/b"}}' not in own  # gone with its exporter


def test_watch_config_reloads_when_the_file_changes(tmp_path: Path) -> None:
    ports = {**default_ports(), "extra": free_port()}
    first = sighup_config(ports, "prometheus", watch=True)
    with run_gateway(tmp_path, literal(first), ports) as gateway:
        extra = f"http://127.0.0.1:{ports['extra']}/metrics"
        gateway.config_path.write_text(sighup_config(ports, "prometheus, prometheus/b", True))
        block_until(lambda: serves(extra), timeout=10, what="reloaded on the file change")


def test_set_overrides_apply_again_on_reload(tmp_path: Path) -> None:
    ports = {**default_ports(), "extra": free_port()}
    override = "service.pipelines.metrics.exporters=[prometheus, prometheus/b]"
    first = literal(sighup_config(ports, "prometheus"))
    with run_gateway(tmp_path, first, ports, args=["--set", override]) as gateway:
        extra = f"http://127.0.0.1:{ports['extra']}/metrics"
        assert serves(extra)  # prometheus/b is in the pipeline through --set only
        _, loaded_at = reload_gauges(gateway)
        changed = sighup_config(ports, "prometheus").replace("level: info", "level: warning")
        gateway.config_path.write_text(changed)
        gateway.process.send_signal(signal.SIGHUP)
        block_until(lambda: reload_gauges(gateway)[1] > loaded_at, what="the reload")
        assert serves(extra)  # the override applied again: prometheus/b kept
