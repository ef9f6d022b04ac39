"""The daemon as users run it: default config, own telemetry, logs, signals, plugins."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import requests
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.metrics.v1.metrics_pb2 import Gauge, Metric, NumberDataPoint

from tests.support.gateway import Gateway, run_gateway, wait_ready
from tests.support.poll import block_until
from tests.support.ports import free_port

pytestmark = pytest.mark.integration


def post_gauge(gateway: Gateway, name: str = "temperature", value: float = 21.0) -> None:
    request = ExportMetricsServiceRequest()
    metric = Metric(name=name)
    metric.gauge.CopyFrom(
        Gauge(data_points=[NumberDataPoint(time_unix_nano=time.time_ns(), as_double=value)])
    )
    request.resource_metrics.add().scope_metrics.add().metrics.append(metric)
    response = requests.post(
        gateway.url("http", "/v1/metrics"),
        data=request.SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
        timeout=10,
    )
    assert response.status_code == 200, response.text


def test_own_telemetry_health_and_structured_logs(tmp_path: Path) -> None:
    with run_gateway(tmp_path) as gateway:
        assert requests.get(gateway.url("telemetry", "/healthz"), timeout=5).status_code == 200
        assert requests.get(gateway.url("telemetry", "/readyz"), timeout=5).status_code == 200
        post_gauge(gateway)
        sent = 'metricgate_exporter_sent_points_total{exporter="prometheus"} 1.0'
        block_until(lambda: sent in gateway.scrape(port="telemetry"), what=sent)
        own = gateway.scrape(port="telemetry")
        assert (
            'metricgate_receiver_accepted_points_total{receiver="otlp",transport="http"} 1.0' in own
        )
        assert 'metricgate_exporter_queue_capacity{exporter="prometheus"} 1000.0' in own
        assert "process_resident_memory_bytes" in own
        assert "metricgate_build_info" in own
        exit_code = gateway.stop(signal.SIGTERM)
    assert exit_code == 0
    records = [json.loads(line) for line in gateway.logs().splitlines() if line.startswith("{")]
    messages = [r["msg"] for r in records]
    assert "metricgate started" in messages
    assert "stopped" in messages
    assert all({"ts", "level", "logger", "msg"} <= set(r) for r in records)


def test_sigint_drains_and_exits_zero(tmp_path: Path) -> None:
    with run_gateway(tmp_path) as gateway:
        post_gauge(gateway)
        started = time.monotonic()
        assert gateway.stop(signal.SIGINT) == 0
        assert time.monotonic() - started < 10


def test_builtin_default_config_serves_otlp_and_prometheus(tmp_path: Path) -> None:
    """`metricgate run` with no config: OTLP gRPC + HTTP in, Prometheus out, own telemetry.

    The ports come from the environment (the built-in config's defaults are 4317, 4318, 9464 and
    8888), so the test runs beside a gateway already serving on those.
    """
    ports = {
        "grpc": free_port(),
        "http": free_port(),
        "prometheus": free_port(),
        "telemetry": free_port(),
    }
    log_path = tmp_path / "default.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "metricgate", "run"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={
                **os.environ,
                "METRICGATE_HOST": "127.0.0.1",
                "METRICGATE_OTLP_GRPC_PORT": str(ports["grpc"]),
                "METRICGATE_OTLP_HTTP_PORT": str(ports["http"]),
                "METRICGATE_PROMETHEUS_PORT": str(ports["prometheus"]),
                "METRICGATE_TELEMETRY_PORT": str(ports["telemetry"]),
            },
        )
    gateway = Gateway(process, ports, log_path, tmp_path / "none")
    try:
        wait_ready(gateway, 30)
        post_gauge(gateway, "room.temperature", 19.5)
        block_until(
            lambda: "room_temperature 19.5" in gateway.scrape(), what="the gauge on the page"
        )
    finally:
        assert gateway.stop() == 0


def test_third_party_component_from_an_entry_point(tmp_path: Path) -> None:
    """A plugin is a pip install away: a distribution with a `metricgate.components` entry."""
    site = tmp_path / "site"
    (site / "mgplugin-1.0.dist-info").mkdir(parents=True)
    (site / "mgplugin-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: mgplugin\nVersion: 1.0\n"
    )
    (site / "mgplugin-1.0.dist-info" / "entry_points.txt").write_text(
        "[metricgate.components]\nblackhole = mgplugin:FACTORY\n"
    )
    (site / "mgplugin.py").write_text(
        textwrap.dedent(
            '''
            from metricgate.pipeline import Exporter, ExporterConfig, Factory, Kind

            class NullExporter(Exporter):
                """Accepts and forgets."""

                async def export(self, batch):
                    pass

            FACTORY = Factory(
                "blackhole", Kind.EXPORTER, ExporterConfig,
                lambda cid, config, _: NullExporter(cid), "a plugin that drops everything",
            )
            '''
        )
    )
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    listing = subprocess.run(
        [sys.executable, "-m", "metricgate", "components"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert "blackhole" in listing.stdout and "a plugin that drops everything" in listing.stdout
    config = tmp_path / "plugin.yaml"
    config.write_text(
        f"""
receivers: {{otlp: {{protocols: {{http: {{endpoint: "127.0.0.1:{free_port()}"}}}}}}}}
exporters: {{blackhole: {{}}}}
service: {{pipelines: {{metrics: {{receivers: [otlp], exporters: [blackhole]}}}}}}
"""
    )
    result = subprocess.run(
        [sys.executable, "-m", "metricgate", "validate", "--config", str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_debug_exporter_logs_points(tmp_path: Path) -> None:
    template = """
receivers:
  otlp:
    protocols:
      http: {{endpoint: "127.0.0.1:{http}"}}
exporters:
  debug: {{verbosity: detailed}}
service:
  pipelines:
    metrics: {{receivers: [otlp], exporters: [debug]}}
  telemetry:
    metrics: {{address: "127.0.0.1:{telemetry}"}}
    logs: {{format: json}}
"""
    with run_gateway(tmp_path, template) as gateway:
        post_gauge(gateway, "queue.depth", 42.0)
        block_until(lambda: '"metric": "queue.depth"' in gateway.logs(), what="the point logged")
    points = [
        json.loads(line)
        for line in gateway.logs().splitlines()
        if line.startswith("{") and '"msg": "point"' in line
    ]
    assert points[0]["metric"] == "queue.depth"
    assert points[0]["value"] == 42.0
    assert points[0]["kind"] == "gauge"
