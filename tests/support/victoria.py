"""A real VictoriaMetrics single-node server (Debian's package, unpacked by scripts/test)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from tests.support.binaries import require_binary
from tests.support.ports import free_port
from tests.support.processes import running_process
from tests.support.prometheus import PrometheusServer


class VictoriaMetricsServer(PrometheusServer):
    """Same query helpers as `PrometheusServer` (VictoriaMetrics speaks its HTTP API); every
    query first flushes freshly ingested rows so they are searchable at once."""

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        requests.get(f"{self.url}/internal/force_flush", timeout=10)
        return super().query(expr, at)


@contextmanager
def run_victoria_metrics(
    tmp_path: Path, dedup: bool = False, port: int | None = None
) -> Iterator[VictoriaMetricsServer]:
    """Start VictoriaMetrics accepting remote-write on /api/v1/write; stop it afterwards.
    `dedup`: keep one sample per series and millisecond (a sample sent twice counts once);
    `port`: where it listens (a free one if not given)."""
    binary = require_binary("victoria-metrics")
    port = port or free_port()
    data = tmp_path / f"victoria-{port}"
    data.mkdir()
    log_path = data / "victoria.log"
    argv = [
        binary,
        f"-storageDataPath={data / 'storage'}",
        f"-httpListenAddr=127.0.0.1:{port}",
        "-search.latencyOffset=0s",
        "-search.disableCache",
        "-loggerLevel=WARN",
        *(["-dedup.minScrapeInterval=1ms"] if dedup else []),
    ]
    ready = f"http://127.0.0.1:{port}/health"
    with running_process("victoria-metrics", argv, log_path, ready) as process:
        yield VictoriaMetricsServer(process, port, log_path)
