"""The remote-write persistent queue across kill -9: every acknowledged sample arrives, in order,
with the queue in the clear or encrypted (`encryption`); an altered encrypted record is skipped."""

from __future__ import annotations

import asyncio
import signal
from collections import defaultdict
from pathlib import Path

import pytest

from metricgate.pipeline.encryption import write_key_file
from tests.support.gateway import Gateway, default_ports, run_gateway
from tests.support.poll import wait_until
from tests.support.ports import free_port
from tests.support.remote_write import Receiver, Sample, serve
from tests.support.wal import flip_body_byte, rewrite_record

pytestmark = pytest.mark.integration

SERIES = 5
BASE_NS = 1_700_000_000_000_000_000

TEMPLATE = """
receivers:
  otlp:
    protocols:
      http: {{endpoint: "127.0.0.1:{http}"}}
exporters:
  prometheus_remote_write:
    endpoint: "http://127.0.0.1:{backend}/api/v1/write"
    flush_interval: 10ms
    target_info: {{enabled: false}}
    shards: {{min: 1, max: 4}}
    retry_on_failure: {{initial_interval: 50ms, max_interval: 200ms, max_elapsed_time: 0}}
    queue: {{directory: "{queue_dir}", fsync: always, segment_bytes: 8KiB}}
service:
  pipelines:
    metrics: {{receivers: [otlp], exporters: [prometheus_remote_write]}}
  telemetry:
    metrics: {{address: "127.0.0.1:{telemetry}"}}
    logs: {{level: info, format: json}}
"""


def template(queue_dir: Path, key_file: Path | None = None) -> str:
    text = TEMPLATE.replace("{queue_dir}", str(queue_dir))
    if key_file is None:
        return text  # the deprecated `queue:` spelling, still read
    return text.replace(
        "    queue: {{",
        f'    sending_queue:\n      storage: {{{{encryption: {{{{key_file: "{key_file}"}}}}, ',
    )


def key(tmp_path: Path, encrypted: bool) -> Path | None:
    if not encrypted:
        return None
    write_key_file(str(tmp_path / "wal.key"))
    return tmp_path / "wal.key"


def post(gateway: Gateway, step: int) -> int:
    points = [
        ({"series": f"s{s}"}, float(step), BASE_NS + step * 1_000_000_000) for s in range(SERIES)
    ]
    return gateway.post_gauge("durable_gauge", points)


def series_of(sample: Sample) -> str:
    return dict(sample[0]).get("series", "")


def kill(gateway: Gateway) -> None:
    gateway.process.send_signal(signal.SIGKILL)
    gateway.process.wait(10)


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
async def test_acknowledged_samples_survive_kill_9(tmp_path: Path, encrypted: bool) -> None:
    ports = {**default_ports(), "backend": free_port()}
    queue_dir = tmp_path / "queue"
    key_file = key(tmp_path, encrypted)
    accepted: list[int] = []
    with run_gateway(tmp_path, template(queue_dir, key_file), ports) as gateway:
        for step in range(40):
            if post(gateway, step) == 200:
                accepted.append(step)
        assert gateway.own_metric("metricgate_exporter_queue_pending_bytes") > 0
        assert gateway.own_metric("metricgate_exporter_queue_disk_bytes") > 0
        assert gateway.own_metric("metricgate_exporter_queue_oldest_age_seconds") > 0
        kill(gateway)
    assert len(accepted) == 40
    segments = list(queue_dir.rglob("*.seg"))
    assert segments
    assert any(b"durable_gauge" in s.read_bytes() for s in segments) != encrypted

    receiver = Receiver()
    ports2 = {**ports, "http": free_port(), "telemetry": free_port()}
    with run_gateway(tmp_path, template(queue_dir, key_file), ports2) as gateway:
        async with serve(receiver, ports["backend"]):
            expected = {
                (f"s{s}", BASE_NS // 1_000_000 + step * 1000)
                for step in accepted
                for s in range(SERIES)
            }

            def arrived() -> bool:
                return {(series_of(x), x[2]) for x in receiver.accepted} >= expected

            await wait_until(arrived, timeout=30, interval=0.05)
            # Samples accepted after the restart go out behind the replayed ones.
            assert await asyncio.to_thread(post, gateway, 100) == 200
            await wait_until(lambda: len(receiver.accepted) == len(expected) + SERIES)
            await wait_until(
                lambda: gateway.own_metric("metricgate_exporter_queue_pending_bytes") == 0,
                interval=0.05,
            )

    per_series: dict[str, list[int]] = defaultdict(list)
    for sample in receiver.accepted:
        per_series[series_of(sample)].append(sample[2])
    assert set(per_series) == {f"s{s}" for s in range(SERIES)}
    for timestamps in per_series.values():
        assert timestamps == sorted(timestamps)
        assert len(timestamps) == len(set(timestamps))  # none twice


async def test_corrupt_queue_file_is_skipped_and_reported(tmp_path: Path) -> None:
    ports = {**default_ports(), "backend": free_port()}
    queue_dir = tmp_path / "queue"
    with run_gateway(tmp_path, template(queue_dir), ports) as gateway:
        for step in range(20):
            assert post(gateway, step) == 200
        kill(gateway)
    segments = sorted(queue_dir.rglob("*.seg"), key=lambda p: p.stat().st_size)
    victim = segments[-1]
    data = bytearray(victim.read_bytes())
    data[40] ^= 0xFF  # inside the first record's payload
    victim.write_bytes(bytes(data))

    receiver = Receiver()
    ports2 = {**ports, "http": free_port(), "telemetry": free_port()}
    with run_gateway(tmp_path, template(queue_dir), ports2) as gateway:
        async with serve(receiver, ports["backend"]):
            await wait_until(
                lambda: gateway.own_metric("metricgate_exporter_queue_pending_bytes") == 0,
                timeout=30,
                interval=0.05,
            )
            corrupt = gateway.own_metric(
                "metricgate_exporter_queue_dropped_records_total{"
                'exporter="prometheus_remote_write",reason="corrupt"}',
            )
            assert corrupt >= 1
            assert await asyncio.to_thread(post, gateway, 100) == 200
        logs = gateway.logs()
    assert "corrupt record skipped" in logs
    assert 0 < len(receiver.accepted) < 20 * SERIES


async def test_altered_encrypted_record_is_skipped_and_reported(tmp_path: Path) -> None:
    ports = {**default_ports(), "backend": free_port()}
    queue_dir = tmp_path / "queue"
    key_file = key(tmp_path, True)
    with run_gateway(tmp_path, template(queue_dir, key_file), ports) as gateway:
        for step in range(20):
            assert post(gateway, step) == 200
        kill(gateway)
    victim = max(queue_dir.rglob("*.seg"), key=lambda p: p.stat().st_size)
    rewrite_record(victim, 0, flip_body_byte)  # the CRC still holds: only the seal can tell

    receiver = Receiver()
    ports2 = {**ports, "http": free_port(), "telemetry": free_port()}
    with run_gateway(tmp_path, template(queue_dir, key_file), ports2) as gateway:
        async with serve(receiver, ports["backend"]):
            await wait_until(
                lambda: gateway.own_metric("metricgate_exporter_queue_pending_bytes") == 0,
                timeout=30,
                interval=0.05,
            )
            refused = gateway.own_metric(
                "metricgate_exporter_queue_dropped_records_total{"
                'exporter="prometheus_remote_write",reason="integrity"}',
            )
            assert refused == 1
            assert (
                gateway.own_metric(
                    'metricgate_exporter_send_failed_points_total{exporter="prometheus_remote_write",'
                    'reason="queue_integrity"}'
                )
                >= 1
            )
        logs = gateway.logs()
    assert "record failed authentication" in logs
    assert 0 < len(receiver.accepted) < 20 * SERIES
