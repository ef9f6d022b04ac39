"""A real Prometheus server for integration tests (Debian's package, unpacked by scripts/test)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from tests.support.binaries import require_binary
from tests.support.poll import block_until
from tests.support.ports import free_port
from tests.support.processes import running_process


@dataclass
class PrometheusServer:
    """A running Prometheus and helpers for its HTTP API."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """Instant query; returns the result vector (raises on an API error)."""
        params: dict[str, str] = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        response = requests.get(f"{self.url}/api/v1/query", params=params, timeout=10)
        body = response.json()
        if body.get("status") != "success":
            raise AssertionError(f"query {expr!r} failed: {body}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def wait_for(
        self, expr: str, timeout: float = 30.0, min_results: int = 1
    ) -> list[dict[str, Any]]:
        """Poll `expr` until it returns at least `min_results` series."""
        result: list[dict[str, Any]] = []

        def enough() -> bool:
            result[:] = self.query(expr)
            return len(result) >= min_results

        try:
            block_until(enough, timeout, expr, 0.25)
        except AssertionError:
            log_tail = self.log_path.read_text()[-3000:]
            raise AssertionError(
                f"{expr!r} returned {result} after {timeout}s\n{log_tail}"
            ) from None
        return result

    def targets_up(self) -> list[dict[str, Any]]:
        response = requests.get(f"{self.url}/api/v1/targets", timeout=10)
        active: list[dict[str, Any]] = response.json()["data"]["activeTargets"]
        return active


@contextmanager
def run_prometheus(
    tmp_path: Path,
    scrape_targets: list[str] | None = None,
    scrape_interval: str = "1s",
    extra_args: list[str] | None = None,
    extra_config: str = "",
) -> Iterator[PrometheusServer]:
    """Start Prometheus scraping `scrape_targets` (host:port) every `scrape_interval`.

    `extra_config` is YAML appended to the generated config as top-level keys (for example a
    `remote_write:` section); it must not repeat `global` or `scrape_configs`.
    """
    binary = require_binary("prometheus")
    port = free_port()
    data = tmp_path / f"prometheus-{port}"
    data.mkdir()
    config = data / "prometheus.yml"
    lines = ["global:", f"  scrape_interval: {scrape_interval}", "  evaluation_interval: 1s"]
    if scrape_targets:
        lines += [
            "scrape_configs:",
            "  - job_name: metricgate",
            "    honor_labels: true",
            f"    scrape_interval: {scrape_interval}",
            f"    static_configs: [{{targets: [{', '.join(repr(t) for t in scrape_targets)}]}}]",
        ]
    if extra_config:
        lines.append(extra_config.strip("\n"))
    config.write_text("\n".join(lines) + "\n")
    log_path = data / "prometheus.log"
    argv = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={data / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--web.enable-lifecycle",
        *(extra_args or []),
    ]
    ready = f"http://127.0.0.1:{port}/-/ready"
    with running_process("prometheus", argv, log_path, ready) as process:
        yield PrometheusServer(process, port, log_path)
