"""`metricgate run --workers 2` against `--workers 1`, as processes with real clients and servers.

The same input (the OpenTelemetry SDK's OTLP/HTTP exporter, and remote-write requests each on a
new connection, so the kernel spreads them over both workers) goes through relabel,
cardinality_limit and aggregate into the Prometheus page and a real VictoriaMetrics: the page and
the stored series must be the same. Then a worker is killed with SIGKILL while its disk queue
holds acknowledged samples and the backend is down: the supervisor starts it again alone, the
other keeps serving, and every acknowledged sample reaches VictoriaMetrics.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
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
from tests.support.victoria import VictoriaMetricsServer, run_victoria_metrics

pytestmark = pytest.mark.integration

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


def _ports(store: int, gw: str) -> dict[str, int | str]:
    return {**default_ports(), "rw": free_port(), "store": store, "gw": gw}


@contextmanager
def _gateway(
    tmp_path: Path, template: str, ports: dict[str, int | str], workers: int
) -> Iterator[Gateway]:
    with run_gateway(
        tmp_path,
        template,
        ports,
        args=("--workers", str(workers)),  # type: ignore[arg-type]
    ) as gateway:
        yield gateway


def _remote_write_requests() -> list[bytes]:
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


def _send(gateway: Gateway) -> None:
    for body in _remote_write_requests():
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


def _page(gateway: Gateway) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    samples = {}
    for family in text_string_to_metric_families(gateway.scrape()):
        for sample in family.samples:
            labels = tuple(sorted(sample.labels.items()))
            key = (sample.name, labels)
            assert key not in samples, f"{key} twice on the page"
            samples[key] = sample.value
    return samples


def _labels(name: str, labels: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """A page sample's series as VictoriaMetrics stores it."""
    return tuple(sorted((*labels, ("__name__", name))))


def _stored(store: VictoriaMetricsServer, gw: str) -> dict[tuple[tuple[str, str], ...], str]:
    result = store.query(f'last_over_time({{gw="{gw}"}}[10m])')
    return {
        tuple(sorted((k, v) for k, v in item["metric"].items() if k != "gw")): item["value"][1]
        for item in result
    }


def _own(gateway: Gateway, name: str, view: str = "") -> dict[str, float]:
    """Own metric `name`'s samples by label text, from the telemetry page (`view`: a query)."""
    text = requests.get(gateway.url("telemetry", f"/metrics{view}"), timeout=5).text
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name)
    }


def test_two_workers_give_what_one_gives(tmp_path: Path) -> None:
    with run_victoria_metrics(tmp_path) as store:
        pages = {}
        for workers in (1, 2):
            ports = _ports(store.port, f"w{workers}")
            with _gateway(tmp_path, TEMPLATE, ports, workers) as gateway:
                _send(gateway)
                time.sleep(2.5)  # two aggregation intervals: every window flushed
                block_until(lambda: len(_page(gateway)) > 50, 10, "page filled")
                pages[workers] = _page(gateway)
                if workers == 2:
                    each = _own(
                        gateway, "metricgate_receiver_accepted_points_total", "?workers=each"
                    )
                    assert {k.split('worker="')[1][0] for k, v in each.items() if v > 0} == {
                        "0",
                        "1",
                    }
                    assert sum(_own(gateway, "metricgate_worker_routed_points_total").values()) > 0
                    started = [
                        json.loads(line)
                        for line in gateway.logs().splitlines()
                        if '"metricgate started"' in line
                    ]
                    assert sorted(entry["worker"] for entry in started) == [0, 1]
                    summed = _own(gateway, "metricgate_receiver_accepted_points_total")
                    assert sum(summed.values()) == sum(each.values())
        one, two = pages[1], pages[2]
        assert one.keys() == two.keys()
        assert one == two
        names = {name for name, _ in one}
        assert "limited_gauge" in names and "skip_me" not in names
        assert any(name.startswith("agg_input:1s_by_zone") for name in names)
        assert any(name.startswith("sdk_latency_milliseconds") for name in names)
        limited = [dict(labels) for name, labels in one if name == "limited_gauge"]
        assert len([labels for labels in limited if "id" in labels]) == 6  # and the overflow
        stored_one = block_until_stored(store, "w1", 60)
        stored_two = block_until_stored(store, "w2", len(stored_one))
        assert stored_one == stored_two


def block_until_stored(
    store: VictoriaMetricsServer, gw: str, at_least: int
) -> dict[tuple[tuple[str, str], ...], str]:
    found: dict[tuple[tuple[str, str], ...], str] = {}

    def enough() -> bool:
        found.clear()
        found.update(_stored(store, gw))
        return len(found) >= at_least

    block_until(enough, 20, f"{at_least} series stored for {gw}", 0.25)
    return found


DURABLE = TEMPLATE.replace(
    "    flush_interval: 50ms\n",
    "    flush_interval: 50ms\n"
    '    sending_queue: {{storage: {{directory: "{queue}", fsync: always}}}}\n',
)


def _children(pid: int) -> dict[int, int]:
    """Worker index by pid, for the workers the supervisor `pid` started."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) != pid:
            continue
        for item in environ.split(b"\0"):
            if item.startswith(b"METRICGATE_WORKER_INDEX="):
                found[int(entry.name)] = int(item.split(b"=", 1)[1])
    return found


def test_a_killed_worker_is_restarted_alone_and_its_queue_replayed(tmp_path: Path) -> None:
    store_port = free_port()  # nothing listens there yet: every sample stays queued
    ports = {**_ports(store_port, "durable"), "queue": str(tmp_path / "queue")}
    with _gateway(tmp_path, DURABLE, ports, 2) as gateway:
        _send(gateway)
        time.sleep(2.5)  # every aggregation window flushed
        acknowledged = {_labels(name, labels) for name, labels in _page(gateway)}
        workers = _children(gateway.process.pid)
        assert sorted(workers.values()) == [0, 1]
        queued = tmp_path / "queue" / "worker-1" / "prometheus_remote_write"
        assert queued.is_dir()
        victim = next(pid for pid, index in workers.items() if index == 1)
        survivor = next(pid for pid, index in workers.items() if index == 0)
        os.kill(victim, signal.SIGKILL)

        def restarted() -> bool:
            now = _children(gateway.process.pid)
            return sorted(now.values()) == [0, 1] and victim not in now

        block_until(restarted, 20, "worker 1 restarted", 0.1)
        assert survivor in _children(gateway.process.pid)
        block_until(
            lambda: requests.get(gateway.url("telemetry", "/readyz"), timeout=2).ok,
            30,
            "the set ready again",
            0.1,
        )
        assert "restarting it alone" in gateway.logs()
        with run_victoria_metrics(tmp_path, port=store_port) as store:
            stored = block_until_stored(store, "durable", len(acknowledged))
            assert stored.keys() == acknowledged


RELOADED = """
receivers:
  otlp:
    protocols:
      http: {{endpoint: "127.0.0.1:{http}"}}
processors:
  relabel:
    relabel_configs:
      - {{target_label: stage, replacement: "{stage}"}}
exporters:
  prometheus: {{endpoint: "127.0.0.1:{prometheus}"}}
service:
  pipelines:
    metrics: {{receivers: [otlp], processors: [relabel], exporters: [prometheus]}}
  telemetry:
    metrics: {{address: "127.0.0.1:{telemetry}"}}
    logs: {{level: info, format: json}}
"""


def _stages(gateway: Gateway) -> set[str]:
    return {
        dict(labels).get("stage", "") for name, labels in _page(gateway) if name != "target_info"
    }


def _post_every_metric(gateway: Gateway) -> None:
    for m in range(12):  # names spread over both workers
        assert gateway.post_gauge(f"reload_gauge_{m}", [({"k": "v"}, 1.0, time.time_ns())]) == 200


def _reloaded_at(gateway: Gateway) -> dict[str, float]:
    name = "metricgate_config_last_reload_success_timestamp_seconds"
    return _own(gateway, name, "?workers=each")


def test_a_reload_reaches_every_worker(tmp_path: Path) -> None:
    ports = {**default_ports(), "stage": "one"}
    with _gateway(tmp_path, RELOADED, ports, 2) as gateway:  # type: ignore[arg-type]
        _post_every_metric(gateway)
        assert _stages(gateway) == {"one"}
        before = _reloaded_at(gateway)
        assert len(before) == 2
        time.sleep(1.1)  # the success time has whole-second resolution at worst
        gateway.config_path.write_text(RELOADED.format(**{**ports, "stage": "two"}))
        gateway.process.send_signal(signal.SIGHUP)  # to the supervisor

        def reloaded_everywhere() -> bool:
            now = _reloaded_at(gateway)
            return all(now[key] > before[key] for key in before)

        block_until(reloaded_everywhere, 20, "both workers reloaded", 0.1)
        _post_every_metric(gateway)
        assert _stages(gateway) == {"one", "two"}  # the first values stay until they expire
        assert len([s for s in _page(gateway) if dict(s[1]).get("stage") == "two"]) == 12

        gateway.config_path.write_text(RELOADED.format(**{**ports, "stage": "three"}))
        answer = requests.post(gateway.url("telemetry", "/-/reload"), timeout=10)
        assert answer.status_code == 200, answer.text

        def both_three() -> bool:
            _post_every_metric(gateway)
            return len([s for s in _page(gateway) if dict(s[1]).get("stage") == "three"]) == 12

        block_until(both_three, 20, "both workers on the third config", 0.2)


SCRAPING = """
receivers:
  prometheus:
    config:
      global: {{scrape_interval: 1s, scrape_timeout: 900ms}}
      scrape_configs:
        - job_name: shared
          static_configs: [{{targets: [{targets}]}}]
  pushgateway: {{endpoint: "127.0.0.1:{push}"}}
exporters:
  prometheus: {{endpoint: "127.0.0.1:{prometheus}", metric_expiration: 1h}}
service:
  pipelines:
    metrics: {{receivers: [prometheus, pushgateway], exporters: [prometheus]}}
  telemetry:
    metrics: {{address: "127.0.0.1:{telemetry}"}}
    logs: {{level: info, format: json}}
"""


class _Target(BaseHTTPRequestHandler):
    hits: dict[int, int] = {}

    def do_GET(self) -> None:
        port = self.server.server_address[1]
        _Target.hits[port] = _Target.hits.get(port, 0) + 1
        body = f'# TYPE scraped_gauge gauge\nscraped_gauge{{port="{port}"}} 1\n'.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_a_set_scrapes_each_target_once_and_one_worker_takes_the_pushes(tmp_path: Path) -> None:
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), _Target) for _ in range(8)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    ports = [server.server_address[1] for server in servers]
    try:
        config = {
            **default_ports(),
            "push": free_port(),
            "targets": ", ".join(f'"127.0.0.1:{port}"' for port in ports),
        }
        with _gateway(tmp_path, SCRAPING, config, 2) as gateway:  # type: ignore[arg-type]
            block_until(
                lambda: all(_Target.hits.get(port, 0) >= 1 for port in ports), 20, "scraped", 0.1
            )
            _Target.hits.clear()
            time.sleep(4.0)
            hits = [_Target.hits.get(port, 0) for port in ports]
            assert all(2 <= count <= 5 for count in hits), hits  # about 4 each, not 8
            page = _page(gateway)
            up = [dict(labels)["instance"] for name, labels in page if name == "up"]
            assert sorted(up) == sorted(f"127.0.0.1:{port}" for port in ports)

            push = f"http://127.0.0.1:{config['push']}/metrics/job/batch"
            for value in range(6):  # new connections: each could reach either worker
                with requests.Session() as session:
                    body = f"pushed_total {value}\n"
                    assert session.put(push, data=body, timeout=5).status_code == 200
            block_until(
                lambda: _page(gateway).get(("pushed_total", (("job", "batch"),))) == 5.0,
                10,
                "the last push on the page",
                0.1,
            )
            with requests.Session() as session:
                assert session.delete(push, timeout=5).status_code == 202
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def test_remote_write_metadata_reaches_every_worker(tmp_path: Path) -> None:
    with run_victoria_metrics(tmp_path) as store:
        ports = _ports(store.port, "meta")
        with _gateway(tmp_path, TEMPLATE, ports, 2) as gateway:
            url = gateway.url("rw", "/api/v1/write")
            counter = 1  # prometheus.MetricMetadata.COUNTER
            with requests.Session() as session:  # one connection: one worker learns it
                body = v1(metadata=(("meta_requests_total", counter),))
                assert session.post(url, data=body, headers=V1_HEADERS, timeout=10).ok
            for i in range(12):  # new connections: both workers decode samples of it
                series = ([("__name__", "meta_requests_total"), ("i", str(i))], [(1.0, NOW_MS)])
                with requests.Session() as session:
                    assert session.post(url, data=v1(series), headers=V1_HEADERS, timeout=10).ok
            block_until(
                lambda: len([k for k in _page(gateway) if k[0] == "meta_requests_total"]) >= 6,
                10,
                "samples on the page",
                0.1,
            )
            families = {
                family.name: family.type
                for family in text_string_to_metric_families(gateway.scrape())
            }
            assert families["meta_requests"] == "counter"
            assert "meta_requests_total" not in families  # no second family typed otherwise


def test_an_invalid_series_owned_by_another_worker_is_answered_as_by_one(tmp_path: Path) -> None:
    with (
        run_victoria_metrics(tmp_path) as store,
        _gateway(tmp_path, TEMPLATE, _ports(store.port, "bad"), 2) as gateway,
    ):
        url = gateway.url("rw", "/api/v1/write")
        valid = [([("__name__", f"valid_{m}"), ("job", "x")], [(1.0, NOW_MS)]) for m in range(10)]
        invalid = [
            ([("__name__", f"valid_{m}"), ("jo-b", "x")], [(1.0, NOW_MS)]) for m in range(10)
        ]
        for _ in range(4):  # new connections: both workers receive it
            with requests.Session() as session:
                answer = session.post(
                    url, data=v1(*valid, *invalid), headers=V1_HEADERS, timeout=10
                )
                assert answer.status_code == 400
                assert "invalid label name 'jo-b'" in answer.text
        page = {name for name, _ in _page(gateway)}
        assert {f"valid_{m}" for m in range(10)} <= page
        refused = _own(gateway, "metricgate_receiver_refused_points_total")
        assert sum(v for k, v in refused.items() if "invalid_series" in k) == 40
