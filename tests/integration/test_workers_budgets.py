"""`metricgate run --workers 2` with a `max_series` that spans metrics: the set admits what one
process admits (exactly `max_series` series of a flood spread over both workers), never each
worker its own `max_series`."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from tests.support.gateway import default_ports
from tests.support.poll import block_until
from tests.support.ports import free_port
from tests.support.remote_write import V1_HEADERS, v1
from tests.support.workers import NOW_MS, own_samples, page_samples, run_workers

pytestmark = pytest.mark.integration

BUDGET = """
receivers:
  prometheus_remote_write: {{endpoint: "127.0.0.1:{rw}"}}
processors:
  cardinality_limit: {{max_series: 90, on_limit: drop}}
exporters:
  prometheus: {{endpoint: "127.0.0.1:{prometheus}"}}
service:
  pipelines:
    metrics:
      receivers: [prometheus_remote_write]
      processors: [cardinality_limit]
      exporters: [prometheus]
  telemetry:
    metrics: {{address: "127.0.0.1:{telemetry}"}}
    logs: {{level: info, format: json}}
"""


@pytest.mark.parametrize("workers", [1, 2])
def test_max_series_counts_the_whole_set(tmp_path: Path, workers: int) -> None:
    ports = {**default_ports(), "rw": free_port()}
    with run_workers(tmp_path, BUDGET, ports, workers) as gateway:
        for m in range(20):  # 200 series of 20 metrics, spread over the workers by metric
            body = v1(
                *(
                    ([("__name__", f"budget_metric_{m}"), ("s", str(s))], [(1.0, NOW_MS)])
                    for s in range(10)
                )
            )
            with requests.Session() as session:  # a new connection each
                response = session.post(
                    gateway.url("rw", "/api/v1/write"), data=body, headers=V1_HEADERS, timeout=10
                )
                assert response.status_code == 204, response.text

        def on_page() -> int:
            return sum(1 for name, _ in page_samples(gateway) if name.startswith("budget_metric"))

        block_until(lambda: on_page() >= 90, 10, "90 series on the page")
        assert on_page() == 90
        dropped = own_samples(gateway, "metricgate_processor_dropped_points_total")
        assert sum(dropped.values()) == 110
        if workers == 2:  # both workers admitted some: the budget was shared, not split
            each = own_samples(gateway, "metricgate_processor_active_series", "?workers=each")
            assert len([v for v in each.values() if v > 0]) == 2, each
