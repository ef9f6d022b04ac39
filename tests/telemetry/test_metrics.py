"""metricgate's own metrics page, as a Prometheus server scrapes it."""

from __future__ import annotations

import time
from pathlib import Path

from tests.support.gateway import run_gateway
from tests.support.poll import block_until


def test_counters_have_no_created_series(tmp_path: Path) -> None:
    # prometheus_client adds a `<counter>_created` series per counter by default; the Collector
    # exposes none, and they double the page for nothing.
    with run_gateway(tmp_path) as gateway:
        gateway.post_gauge("room.temperature", [({}, 19.5, time.time_ns())])
        own = block_until(
            lambda: (
                (page := gateway.scrape(port="telemetry"))
                and "metricgate_receiver_accepted_points_total{" in page
                and page
            ),
            what="the accepted points counter",
        )
    assert "# TYPE metricgate_receiver_accepted_points_total counter" in own
    assert "_created" not in own
