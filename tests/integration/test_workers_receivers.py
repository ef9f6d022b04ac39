"""`metricgate run --workers 2`: what each receiver does in a set of workers (scrape targets
shared out and listed on one `/debug/targets` page, pushes served by one worker, remote-write
metadata taught to all, remote-write entries passed to their owner undecoded and their refusals
answered as one process does)."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.support.gateway import default_ports
from tests.support.poll import block_until
from tests.support.ports import free_port
from tests.support.remote_write import V1_HEADERS, v1
from tests.support.victoria import run_victoria_metrics
from tests.support.workers import (
    NOW_MS,
    TEMPLATE,
    own_samples,
    page_samples,
    ports_for,
    run_workers,
)

pytestmark = pytest.mark.integration

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
        with run_workers(tmp_path, SCRAPING, config, 2) as gateway:  # type: ignore[arg-type]
            block_until(
                lambda: all(_Target.hits.get(port, 0) >= 1 for port in ports), 20, "scraped", 0.1
            )
            _Target.hits.clear()
            time.sleep(4.0)
            hits = [_Target.hits.get(port, 0) for port in ports]
            assert all(2 <= count <= 5 for count in hits), hits  # about 4 each, not 8
            page = page_samples(gateway)
            up = [dict(labels)["instance"] for name, labels in page if name == "up"]
            assert sorted(up) == sorted(f"127.0.0.1:{port}" for port in ports)
            expected = sorted(f"http://127.0.0.1:{port}/metrics" for port in ports)
            for _ in range(6):  # new connections: each could reach either worker
                with requests.Session() as session:
                    found = session.get(gateway.url("telemetry", "/debug/targets"), timeout=5)
                assert found.status_code == 200, found.text
                targets = found.json()["activeTargets"]
                assert sorted(t["scrapeUrl"] for t in targets) == expected  # each once
                assert {t["health"] for t in targets} == {"up"}

            push = f"http://127.0.0.1:{config['push']}/metrics/job/batch"
            for value in range(6):  # new connections: each could reach either worker
                with requests.Session() as session:
                    body = f"pushed_total {value}\n"
                    assert session.put(push, data=body, timeout=5).status_code == 200
            block_until(
                lambda: page_samples(gateway).get(("pushed_total", (("job", "batch"),))) == 5.0,
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
        ports = ports_for(store.port, "meta")
        with run_workers(tmp_path, TEMPLATE, ports, 2) as gateway:
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
                lambda: (
                    len([k for k in page_samples(gateway) if k[0] == "meta_requests_total"]) >= 6
                ),
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
        run_workers(tmp_path, TEMPLATE, ports_for(store.port, "bad"), 2) as gateway,
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
        page = {name for name, _ in page_samples(gateway)}
        assert {f"valid_{m}" for m in range(10)} <= page
        refused = own_samples(gateway, "metricgate_receiver_refused_points_total")
        assert sum(v for k, v in refused.items() if "invalid_series" in k) == 40
