"""`sending_queue.storage` across kill -9: every point gateway A acknowledged reaches gateway B.

A (OTLP/HTTP in, `otlp` exporter with a disk queue out) points at B (OTLP in, Prometheus scrape
endpoint out), which is down at first. A acknowledges the points, is killed with SIGKILL, and
restarted; then B comes up, and B's `/metrics` page must show every acknowledged point. With
`encryption`, the same, and the queue's files never show the metric's name.
"""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import pytest

from metricgate.pipeline.encryption import write_key_file
from tests.support.gateway import DEFAULT_TEMPLATE, Gateway, default_ports, run_gateway
from tests.support.poll import block_until
from tests.support.ports import free_port

pytestmark = pytest.mark.integration

SERIES = 3
STEPS = 30

GATEWAY_A = """
receivers:
  otlp:
    protocols:
      http: {{endpoint: "127.0.0.1:{http}"}}
exporters:
  otlp:
    endpoint: "http://127.0.0.1:{downstream}"
    protocol: http
    timeout: 2s
    retry_on_failure: {{initial_interval: 50ms, max_interval: 200ms, max_elapsed_time: 0}}
    sending_queue:
      num_consumers: 2
      storage: {{directory: "QUEUE_DIR", max_disk_bytes: 64MiB, fsync: batch ENCRYPTION}}
service:
  pipelines:
    metrics: {{receivers: [otlp], exporters: [otlp]}}
  telemetry:
    metrics: {{address: "127.0.0.1:{telemetry}"}}
    logs: {{level: info, format: json}}
"""


LINE = re.compile(r"^durable_gauge\{([^}]*)\} (\S+)", re.M)


def post(gateway: Gateway, step: int) -> int:
    """One request: `SERIES` gauge points, one new series per (step, s), value = step."""
    points = [
        ({"step": str(step), "s": f"s{s}"}, float(step), time.time_ns()) for s in range(SERIES)
    ]
    return gateway.post_gauge("durable_gauge", points)


def arrived(gateway: Gateway) -> set[tuple[int, str]]:
    """(step, series) pairs on B's scrape page whose value is the step, as sent."""
    found = set()
    for labels, value in LINE.findall(gateway.scrape()):
        pairs = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        if "step" in pairs and float(value) == float(pairs["step"]):
            found.add((int(pairs["step"]), pairs["s"]))
    return found


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
def test_acknowledged_points_survive_kill_9_and_reach_the_backend(
    tmp_path: Path, encrypted: bool
) -> None:
    queue_dir = tmp_path / "queue"
    encryption = ""
    if encrypted:
        write_key_file(str(tmp_path / "queue.key"))
        encryption = f', encryption: {{{{key_file: "{tmp_path / "queue.key"}"}}}}'
    template_a = GATEWAY_A.replace("QUEUE_DIR", str(queue_dir)).replace(" ENCRYPTION", encryption)
    ports_b = default_ports()
    ports_a = {**default_ports(), "downstream": ports_b["http"]}

    accepted: list[int] = []
    with run_gateway(tmp_path, template_a, ports_a) as gateway_a:
        for step in range(STEPS):
            if post(gateway_a, step) == 200:
                accepted.append(step)
        assert gateway_a.own_metric("metricgate_exporter_queue_pending_bytes") > 0
        assert gateway_a.own_metric("metricgate_exporter_queue_size") == len(accepted)
        gateway_a.process.send_signal(signal.SIGKILL)
        gateway_a.process.wait(10)
    assert accepted == list(range(STEPS))
    segments = list(queue_dir.rglob("*.seg"))
    assert segments
    in_clear = any(b"durable_gauge" in segment.read_bytes() for segment in segments)
    assert in_clear != encrypted

    ports_a2 = {**ports_a, "http": free_port(), "telemetry": free_port()}
    with run_gateway(tmp_path, template_a, ports_a2) as gateway_a:
        assert "replaying data left by the previous run" in gateway_a.logs()
        assert post(gateway_a, STEPS) == 200  # accepted after the restart, still B is down
        accepted.append(STEPS)
        with run_gateway(tmp_path, DEFAULT_TEMPLATE, ports_b) as gateway_b:
            expected = {(step, f"s{s}") for step in accepted for s in range(SERIES)}
            block_until(lambda: arrived(gateway_b) >= expected, 40, interval=0.05)
            block_until(
                lambda: gateway_a.own_metric("metricgate_exporter_queue_pending_bytes") == 0,
                15,
                interval=0.05,
            )
            assert gateway_a.own_metric("metricgate_exporter_send_failed_points") == 0
            assert gateway_a.own_metric("metricgate_exporter_queue_dropped_records") == 0
