"""A real VictoriaMetrics single-node server (Debian's package, unpacked by scripts/test)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from tests.support.binaries import require_binary
from tests.support.ports import free_port
from tests.support.prometheus import PrometheusServer


class VictoriaMetricsServer(PrometheusServer):
    """Same query helpers as `PrometheusServer` (VictoriaMetrics speaks its HTTP API); every
    query first flushes freshly ingested rows so they are searchable at once."""

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        requests.get(f"{self.url}/internal/force_flush", timeout=10)
        return super().query(expr, at)


@contextmanager
def run_victoria_metrics(tmp_path: Path) -> Iterator[VictoriaMetricsServer]:
    """Start VictoriaMetrics accepting remote-write on /api/v1/write; stop it afterwards."""
    binary = require_binary("victoria-metrics")
    port = free_port()
    data = tmp_path / f"victoria-{port}"
    data.mkdir()
    log_path = data / "victoria.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                binary,
                f"-storageDataPath={data / 'storage'}",
                f"-httpListenAddr=127.0.0.1:{port}",
                "-search.latencyOffset=0s",
                "-search.disableCache",
                "-loggerLevel=WARN",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = VictoriaMetricsServer(process, port, log_path)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise AssertionError(f"victoria-metrics exited:\n{log_path.read_text()}")
            try:
                if requests.get(f"{server.url}/health", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"victoria-metrics not ready:\n{log_path.read_text()}")
            time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
