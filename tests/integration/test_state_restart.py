"""State across restarts, through real processes: a gateway stopped with SIGTERM and started again
keeps its counters (scrape page, delta_to_cumulative, the remote-write encoder) and its cardinality
verdicts; a real Prometheus scraping it and receiving its remote-write sees no counter reset.
Corrupt snapshots, snapshots of a changed config and a missing state directory are logged and
ignored."""

from __future__ import annotations

import re
import time
from pathlib import Path

import requests
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AGGREGATION_TEMPORALITY_CUMULATIVE,
    AGGREGATION_TEMPORALITY_DELTA,
    Metric,
)

from tests.support.gateway import Gateway, default_ports, run_gateway
from tests.support.poll import block_until
from tests.support.ports import free_port
from tests.support.prometheus import PrometheusServer, run_prometheus

TEMPLATE = """
receivers:
  otlp:
    protocols:
      http: {{endpoint: "127.0.0.1:{http}"}}
processors:
  delta_to_cumulative: {{max_stale: {max_stale}}}
  cardinality_limit: {{max_series_per_metric: 2}}
exporters:
  prometheus: {{endpoint: "127.0.0.1:{prometheus}"}}
  prometheus_remote_write:
    endpoint: "http://127.0.0.1:{store}/api/v1/write"
    external_labels: {{via: remote_write}}
    flush_interval: 100ms
service:
  state_directory: "STATE"
  shutdown_timeout: 5s
  pipelines:
    metrics:
      receivers: [otlp]
      processors: [cardinality_limit, delta_to_cumulative]
      exporters: [prometheus]
    metrics/remote_write: {{receivers: [otlp], exporters: [prometheus_remote_write]}}
  telemetry:
    metrics: {{address: "127.0.0.1:{telemetry}"}}
    logs: {{level: info, format: console}}
"""

START_NS = time.time_ns() - 60 * 10**9
"""The cumulative counter's start time (its client never restarts)."""


class Client:
    """An application sending a delta counter, a cumulative counter and a gauge per user."""

    def __init__(self) -> None:
        self.last_ns = time.time_ns()
        self.cumulative = 0.0

    def send(self, gateway: Gateway, delta: float, users: tuple[str, ...] = ()) -> None:
        now = max(time.time_ns(), self.last_ns + 1)
        request = ExportMetricsServiceRequest()
        resource = request.resource_metrics.add()
        resource.resource.attributes.add(key="service.name").value.string_value = "checkout"
        scope = resource.scope_metrics.add()
        scope.scope.name = "shop"
        deltas = Metric(name="jobs.done")
        deltas.sum.is_monotonic = True
        deltas.sum.aggregation_temporality = AGGREGATION_TEMPORALITY_DELTA
        deltas.sum.data_points.add(
            start_time_unix_nano=self.last_ns, time_unix_nano=now, as_double=delta
        )
        self.cumulative += delta * 10
        cumulative = Metric(name="bytes.sent")
        cumulative.sum.is_monotonic = True
        cumulative.sum.aggregation_temporality = AGGREGATION_TEMPORALITY_CUMULATIVE
        cumulative.sum.data_points.add(
            start_time_unix_nano=START_NS, time_unix_nano=now, as_double=self.cumulative
        )
        gauge = Metric(name="sessions")
        for user in users:
            point = gauge.gauge.data_points.add(time_unix_nano=now, as_double=1.0)
            point.attributes.add(key="user").value.string_value = user
        scope.metrics.extend([deltas, cumulative] + ([gauge] if users else []))
        self.last_ns = now
        response = requests.post(
            gateway.url("http", "/v1/metrics"),
            data=request.SerializeToString(),
            headers={"Content-Type": "application/x-protobuf"},
            timeout=10,
        )
        assert response.status_code == 200, response.text


def _page_value(gateway: Gateway, pattern: str) -> float | None:
    found = re.search(rf"^{pattern} (\S+)$", gateway.scrape(), re.MULTILINE)
    return float(found.group(1)) if found else None


def _template(state: Path, max_stale: str = "5m") -> str:
    return TEMPLATE.replace("STATE", str(state)).replace("{max_stale}", max_stale)


def _latest(server: PrometheusServer, expr: str) -> float | None:
    result = server.query(expr)
    return float(result[0]["value"][1]) if result else None


def test_counters_continue_across_a_graceful_restart(tmp_path: Path) -> None:
    state = tmp_path / "state"  # does not exist before the first stop
    ports = {**default_ports(), "store": free_port()}
    client = Client()
    jobs = r"jobs_done_total\{[^}]*\}"
    with run_prometheus(
        tmp_path,
        scrape_targets=[f"127.0.0.1:{ports['prometheus']}"],
        extra_args=["--web.enable-remote-write-receiver"],
    ) as server:
        ports["store"] = server.port
        template = _template(state)
        with run_gateway(tmp_path, template, ports) as gateway:
            assert f"state directory {state} does not exist yet: no state restored" in (
                gateway.logs()
            )
            for _ in range(5):
                client.send(gateway, 1.0, users=("ann", "bob", "cy"))  # cy: over the limit
            block_until(lambda: _page_value(gateway, jobs) == 5, 10, "on the page")
            assert 'user="cy"' not in gateway.scrape()
            block_until(lambda: _latest(server, 'jobs_done_total{via=""}') == 5, 20, "scraped")
            block_until(
                lambda: _latest(server, 'jobs_done_total{via="remote_write"}') == 5, 20, "written"
            )
        logs = gateway.logs()
        for component in (
            "exporter-prometheus",
            "exporter-prometheus_remote_write",
            "processor-delta_to_cumulative@metrics",
            "processor-cardinality_limit@metrics",
        ):
            assert f"state snapshot of {component} written" in logs

        with run_gateway(tmp_path, template, ports) as gateway:
            # the page is back before any new point, with the same values
            assert _page_value(gateway, jobs) == 5
            assert _page_value(gateway, r"bytes_sent_total\{[^}]*\}") == 50
            # verdicts survived: dan is refused although only two users send now
            for _ in range(5):
                client.send(gateway, 1.0, users=("dan", "ann"))
            # continued from 5, not from 0
            block_until(lambda: _page_value(gateway, jobs) == 10, 10, "on the page")
            page = gateway.scrape()
            assert 'user="dan"' not in page and 'user="ann"' in page
            block_until(lambda: _latest(server, 'jobs_done_total{via=""}') == 10, 20, "scraped")
            block_until(
                lambda: _latest(server, 'jobs_done_total{via="remote_write"}') == 10, 20, "written"
            )
            for expr in ("jobs_done_total", "bytes_sent_total"):
                resets = server.query(f"resets({expr}[10m])")
                assert len(resets) == 2, resets  # scraped and remote-written
                assert all(float(r["value"][1]) == 0 for r in resets), resets


def test_stale_and_corrupt_snapshots_are_ignored(tmp_path: Path) -> None:
    state = tmp_path / "state"
    ports = {**default_ports(), "store": free_port()}  # nothing listens: remote-write retries
    client = Client()
    with run_gateway(tmp_path, _template(state), ports) as gateway:
        for _ in range(3):
            client.send(gateway, 1.0)
    page_file = state / "exporter-prometheus.state"
    page_file.write_bytes(page_file.read_bytes()[:-10])
    (state / "processor-cardinality_limit@metrics.state").write_bytes(b"not a snapshot")
    with run_gateway(tmp_path, _template(state, max_stale="10m"), ports) as gateway:
        logs = gateway.logs()
        assert (
            "state snapshot of processor-delta_to_cumulative@metrics ignored: "
            "stale: the component's config changed"
        ) in logs
        assert "state snapshot of exporter-prometheus ignored: corrupt: checksum mismatch" in logs
        assert (
            "state snapshot of processor-cardinality_limit@metrics ignored: "
            "corrupt: not a snapshot file"
        ) in logs
        assert "jobs_done_total" not in gateway.scrape()
        client.send(gateway, 1.0)
        block_until(
            lambda: _page_value(gateway, r"jobs_done_total\{[^}]*\}") == 1, 10, "a new total"
        )
