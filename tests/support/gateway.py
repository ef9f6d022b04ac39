"""Run metricgate as a subprocess, the way users do, on free ports.

Every log a gateway writes (its output, and files a test names, such as its audit log) is checked
for every secret any test registered (`register_secrets`) when the gateway stops, and again by
`tests/conftest.py` at the end of the session, so no credential may ever reach a log.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric

from tests.support.poll import block_until
from tests.support.ports import free_port


@dataclass
class Gateway:
    """A running metricgate process and the ports it listens on."""

    process: subprocess.Popen[bytes]
    ports: dict[str, int]
    log_path: Path
    config_path: Path
    extra: dict[str, object] = field(default_factory=dict)
    https: frozenset[str] = frozenset()
    """Port names served over TLS (their URLs are https)."""
    ca: str | None = None
    """The CA file that verifies the gateway's certificate, for its https ports."""

    def url(self, port_name: str, path: str = "") -> str:
        scheme = "https" if port_name in self.https else "http"
        return f"{scheme}://127.0.0.1:{self.ports[port_name]}{path}"

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def scrape(self, path: str = "/metrics", port: str = "prometheus") -> str:
        response = requests.get(self.url(port, path), timeout=10)
        response.raise_for_status()
        return response.text

    def own_metric(self, name: str) -> float:
        """The sum of every series of the gateway's own metric `name` (all its label sets)."""
        text = requests.get(self.url("telemetry", "/metrics"), timeout=5).text
        return sum(
            float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name)
        )

    def post_gauge(self, name: str, points: list[tuple[dict[str, str], float, int]]) -> int:
        """POST one OTLP/HTTP protobuf request: gauge `name` with (attributes, value, time in ns)
        points; the status code."""
        metric = Metric(name=name)
        for attributes, value, time_ns in points:
            point = metric.gauge.data_points.add(time_unix_nano=time_ns, as_double=value)
            for key, text in attributes.items():
                point.attributes.add(key=key).value.string_value = text
        request = ExportMetricsServiceRequest()
        request.resource_metrics.add().scope_metrics.add().metrics.append(metric)
        response = requests.post(
            self.url("http", "/v1/metrics"),
            data=request.SerializeToString(),
            headers={"Content-Type": "application/x-protobuf"},
            timeout=10,
        )
        return response.status_code

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                return self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError(f"metricgate did not stop within {timeout}s") from None
        return self.process.returncode


def default_ports() -> dict[str, int]:
    return {name: free_port() for name in ("grpc", "http", "prometheus", "telemetry")}


SECRETS: set[str] = set()
"""Every credential a test handed to a gateway this session."""
LOGS: list[Path] = []
"""Every log a gateway of this session wrote."""


def register_secrets(*values: str) -> None:
    """Credentials no gateway log may ever contain (checked at stop and at the session's end)."""
    SECRETS.update(value for value in values if value)


def secrets_in(paths: Iterable[Path]) -> list[str]:
    """`path: secret` for every registered secret found in one of `paths`."""
    found = []
    for path in paths:
        if not path.exists():
            continue
        text = path.read_text(errors="replace")
        found += [f"{path}: {secret!r}" for secret in sorted(SECRETS) if secret in text]
    return found


def render_config(template: str, ports: dict[str, int]) -> str:
    """Fill `{grpc}`, `{http}`, `{prometheus}`, `{telemetry}` (and any other port names)."""
    return template.format(**ports)


DEFAULT_TEMPLATE = """
receivers:
  otlp:
    protocols:
      grpc: {{endpoint: "127.0.0.1:{grpc}"}}
      http: {{endpoint: "127.0.0.1:{http}"}}
exporters:
  prometheus: {{endpoint: "127.0.0.1:{prometheus}"}}
service:
  pipelines:
    metrics: {{receivers: [otlp], exporters: [prometheus]}}
  telemetry:
    metrics: {{address: "127.0.0.1:{telemetry}"}}
    logs: {{level: info, format: json}}
"""


@contextmanager
def run_gateway(
    tmp_path: Path,
    template: str = DEFAULT_TEMPLATE,
    ports: dict[str, int] | None = None,
    env: dict[str, str] | None = None,
    ready_timeout: float = 30.0,
    preexec_fn: Callable[[], None] | None = None,
    https: Iterable[str] = (),
    ca: str | None = None,
    logs: Iterable[Path] = (),
    args: Iterable[str] = (),
) -> Iterator[Gateway]:
    """Start metricgate with `template` rendered on free ports; stop it (SIGTERM) afterwards.
    `preexec_fn` runs in the child before metricgate starts (e.g. to lower its limits). `https`
    names the ports served over TLS (verified with `ca`); `logs` are files the gateway writes
    besides its output (an audit log), checked for secrets with it; `args` go on the command
    line after the config (`--set` overrides)."""
    ports = ports or default_ports()
    config_path = tmp_path / f"metricgate-{ports['telemetry']}.yaml"
    config_path.write_text(render_config(template, ports))
    log_path = tmp_path / f"metricgate-{ports['telemetry']}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "metricgate", "run", "--config", str(config_path), *args],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            preexec_fn=preexec_fn,
        )
    gateway = Gateway(process, ports, log_path, config_path, https=frozenset(https), ca=ca)
    written = [log_path, *logs]
    LOGS.extend(written)
    try:
        wait_ready(gateway, ready_timeout)
        yield gateway
    finally:
        gateway.stop()
    leaks = secrets_in(written)
    assert not leaks, f"secrets in the gateway's logs: {leaks}"


def wait_ready(gateway: Gateway, timeout: float) -> None:
    """Return once the gateway answers `/readyz` with 200; fail with its logs if it exits."""

    def ready() -> bool:
        if gateway.process.poll() is not None:
            raise AssertionError(f"metricgate exited early:\n{gateway.logs()}")
        try:
            url = gateway.url("telemetry", "/readyz")
            return requests.get(url, timeout=1, verify=gateway.ca or True).status_code == 200
        except requests.ConnectionError:
            return False

    try:
        block_until(ready, timeout, "metricgate ready", 0.05)
    except AssertionError as error:
        if "exited early" in str(error):
            raise
        raise AssertionError(f"metricgate not ready after {timeout}s:\n{gateway.logs()}") from None
