"""Prometheus 2.42 as the oracle: it and metricgate scrape the same targets; the series match.

Targets: prometheus_client's HTTP server (OpenMetrics), a Node prom-client server (text 0.0.4),
Debian's prometheus-node-exporter, and a page server for staleness and `honor_labels`. Prometheus
stores what it scrapes; metricgate remote-writes what it scrapes into a second Prometheus. Queried
on both, every series (name and labels) and every value of the static targets must agree, after
a series vanishes and after a target goes down too. Known, documented differences are normalised:
`_created` series (metricgate turns them into start times) are left out, `le` and `quantile`
compared as numbers (metricgate re-renders histograms and summaries from their values), and
`scrape_duration_seconds`/`scrape_series_added` compared by labels only.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Summary,
    start_http_server,
)

from tests.receivers.prometheus_targets import PageServer, page_server
from tests.support.binaries import require_binary
from tests.support.clients import node_env
from tests.support.gateway import run_gateway
from tests.support.poll import block_until
from tests.support.ports import free_port
from tests.support.prometheus import PrometheusServer, run_prometheus

pytestmark = pytest.mark.integration

NODE_TARGET = """
const http = require('http');
const client = require('prom-client');
const registry = new client.Registry();
const c = new client.Counter({name: 'node_app_requests_total', help: 'Requests.',
  labelNames: ['route'], registers: [registry]});
c.inc({route: '/a'}, 5); c.inc({route: '/b'}, 7);
new client.Gauge({name: 'node_app_queue', help: 'Queue.', registers: [registry]}).set(12.5);
const h = new client.Histogram({name: 'node_app_latency_seconds', help: 'Latency.',
  buckets: [0.1, 1, 2.5], registers: [registry]});
h.observe(0.05); h.observe(2); h.observe(9);
const s = new client.Summary({name: 'node_app_size_bytes', help: 'Sizes.', percentiles: [0.5, 0.9],
  registers: [registry]});
s.observe(10); s.observe(20);
http.createServer(async (req, res) => {
  res.setHeader('Content-Type', registry.contentType);
  res.end(await registry.metrics());
}).listen(Number(process.argv[1]), '127.0.0.1');
"""


def jobs(python: str, node: str, node_exporter: str, pages: str) -> str:
    """The same scrape_configs for Prometheus and metricgate (YAML, indented by 4)."""
    return f"""
    - job_name: python
      static_configs: [{{targets: ["{python}"], labels: {{team: py}}}}]
    - job_name: node
      static_configs: [{{targets: ["{node}"]}}]
    - job_name: node_exporter
      static_configs: [{{targets: ["{node_exporter}"]}}]
      metric_relabel_configs:
        - source_labels: [__name__]
          regex: node_(cpu_seconds_total|uname_info|exporter_build_info|memory_MemTotal_bytes)
          action: keep
    - job_name: honor_false
      static_configs: [{{targets: ["{pages}"]}}]
      metrics_path: /honor
    - job_name: honor_true
      honor_labels: true
      static_configs: [{{targets: ["{pages}"]}}]
      metrics_path: /honor
    - job_name: changing
      static_configs: [{{targets: ["{pages}"]}}]
      metrics_path: /changing
"""


def _key(series: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    labels = dict(series["metric"])
    for name in ("le", "quantile"):
        if name in labels:
            labels[name] = float(labels[name])
    return tuple(sorted(labels.items()))


def snapshot(server: PrometheusServer, expr: str, values: bool = True) -> dict[Any, Any]:
    out = {}
    for series in server.query(expr):
        if series["metric"]["__name__"].endswith("_created"):
            continue
        out[_key(series)] = float(series["value"][1]) if values else None
    return out


@pytest.fixture
def node_target() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(["node", "-e", NODE_TARGET, str(port)], env=node_env())
    try:
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def node_exporter(tmp_path: Path) -> Iterator[str]:
    binary = require_binary("prometheus-node-exporter")
    port = free_port()
    log = (tmp_path / "node_exporter.log").open("wb")
    process = subprocess.Popen(
        [binary, f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def python_target() -> Iterator[str]:
    registry = CollectorRegistry()
    jobs_done = Counter("py_jobs_done", "Jobs.", ["queue"], registry=registry)
    jobs_done.labels("q1").inc(3)
    jobs_done.labels("q2").inc(4)
    Gauge("py_temperature_celsius", "Temperature.", registry=registry).set(21.5)
    latency = Histogram("py_latency_seconds", "Latency.", buckets=(0.1, 1.0), registry=registry)
    for value in (0.05, 0.5, 5.0):
        latency.observe(value)
    Summary("py_size_bytes", "Sizes.", registry=registry).observe(42)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.shutdown()
        thread.join()


def _with_node_exporter(found: dict[Any, Any]) -> dict[Any, Any] | None:
    names = {dict(key)["__name__"] for key in found if dict(key)["job"] == "node_exporter"}
    return found if {"node_cpu_seconds_total", "node_uname_info", "up"} <= names else None


def _indent(text: str, spaces: int) -> str:
    return "\n".join(" " * spaces + line[4:] if line.strip() else line for line in text.split("\n"))


def _wait(check: Any) -> Any:
    """`check()`'s first truthy result: both servers scrape every second, so look every 0.25 s."""
    return block_until(check, 60, interval=0.25)


def test_metricgate_stores_what_prometheus_stores(
    tmp_path: Path, python_target: str, node_target: str, node_exporter: str
) -> None:
    asyncio.run(_compare(tmp_path, python_target, node_target, node_exporter))


async def _compare(tmp_path: Path, python: str, node: str, node_exporter: str) -> None:
    async with page_server() as pages:
        pages.set("/honor", 'm{job="exposed",instance="inst",x="1"} 1\n')
        pages.set("/changing", 'c{k="1"} 1\nc{k="2"} 2\n')
        scrape = jobs(python, node, node_exporter, pages.address)
        await asyncio.to_thread(_against_prometheus, tmp_path, scrape, pages)


def _against_prometheus(tmp_path: Path, scrape: str, pages: PageServer) -> None:
    oracle_config = "scrape_configs:" + scrape
    with (
        run_prometheus(tmp_path, extra_config=oracle_config) as oracle,
        run_prometheus(tmp_path, extra_args=["--web.enable-remote-write-receiver"]) as store,
    ):
        telemetry = free_port()
        template = f"""
receivers:
  prometheus:
    config:
      global: {{scrape_interval: 1s, scrape_timeout: 1s}}
      scrape_configs:
{_indent(scrape, 6)}
exporters:
  prometheus_remote_write:
    endpoint: http://127.0.0.1:{store.port}/api/v1/write
    flush_interval: 100ms
service:
  pipelines:
    metrics: {{receivers: [prometheus], exporters: [prometheus_remote_write]}}
  telemetry:
    metrics: {{address: "127.0.0.1:{telemetry}"}}
"""
        escaped = template.replace("{", "{{").replace("}", "}}")
        with run_gateway(tmp_path, escaped, ports={"telemetry": telemetry}):
            everything = '{job=~"python|node|node_exporter|honor_false|honor_true|changing"}'
            # Static targets: every series and value agrees (the exporter's own values move).
            static = '{job=~"python|node|honor_false|honor_true|changing",__name__!~"scrape_.*"}'

            def agree() -> bool:
                theirs = snapshot(oracle, static)
                jobs = {dict(key)["job"] for key in theirs}
                names = {dict(key)["__name__"] for key in theirs}
                complete = jobs == {"python", "node", "honor_false", "honor_true", "changing"}
                complete = (
                    complete and {"py_latency_seconds_bucket", "node_app_size_bytes"} <= names
                )
                return complete and theirs == snapshot(store, static)

            try:
                _wait(agree)
            except AssertionError:
                ours, theirs = snapshot(store, static), snapshot(oracle, static)
                raise AssertionError(
                    f"only Prometheus: {sorted(set(theirs) - set(ours))}\n"
                    f"only metricgate: {sorted(set(ours) - set(theirs))}\n"
                    f"values differ: {[k for k in ours if k in theirs and ours[k] != theirs[k]]}"
                ) from None
            ours = snapshot(store, everything, values=False)
            theirs = _wait(lambda: _with_node_exporter(snapshot(oracle, everything, values=False)))
            assert ours == theirs
            assert len(ours) > 60
            exported = snapshot(store, 'm{job="honor_false"}')
            assert list(exported) == [
                (
                    ("__name__", "m"),
                    ("exported_instance", "inst"),
                    ("exported_job", "exposed"),
                    ("instance", pages.address),
                    ("job", "honor_false"),
                    ("x", "1"),
                )
            ]

            # A series vanishes: both end it (an instant query no longer finds it).
            pages.set("/changing", 'c{k="1"} 1\n')
            _wait(lambda: len(oracle.query('c{job="changing"}')) == 1)
            _wait(lambda: len(store.query('c{job="changing"}')) == 1)
            # The target goes down: both end every series of it and set up to 0.
            pages.set("/changing", "", status=503)
            for server in (oracle, store):
                _wait(lambda s=server: not s.query('c{job="changing"}'))
                _wait(lambda s=server: s.query('up{job="changing"} == 0'))
            assert snapshot(oracle, static) == snapshot(store, static)
