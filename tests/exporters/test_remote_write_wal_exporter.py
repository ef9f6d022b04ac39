"""The remote-write exporter with a disk queue: the sending queue writes through to disk.

`make` configures it with the deprecated `queue.directory` alias on purpose: it must keep working.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from metricgate.errors import QueueFullError
from metricgate.exporters.prometheus_remote_write import (
    RemoteWriteExporter,
    RemoteWriteExporterConfig,
)
from metricgate.pipeline.host import Host
from metricgate.pipeline.queue import ExporterQueue
from metricgate.telemetry import SelfMetrics
from tests.support.batches import number_batch
from tests.support.poll import wait_until
from tests.support.ports import free_port
from tests.support.remote_write import NS, Receiver, serve


def make(port: int, queue_dir: Path, **queue: Any) -> tuple[ExporterQueue, RemoteWriteExporter]:
    config = RemoteWriteExporterConfig(
        endpoint=f"http://127.0.0.1:{port}/api/v1/write",
        flush_interval=0.01,
        target_info={"enabled": False},
        shards={"min": 1, "max": 3},
        retry_on_failure={"initial_interval": 0.02, "max_interval": 0.05},
        queue={"directory": str(queue_dir), **queue},
    )
    exporter = RemoteWriteExporter("prometheus_remote_write", config)
    return ExporterQueue(exporter, config.sending_queue, config.retry_on_failure), exporter


def batch(step: int) -> Any:
    return number_batch({f"s{i}": float(step) for i in range(4)}, timestamp=NS + step * 10**9)


async def test_enqueue_writes_through_and_replays_after_restart(tmp_path: Path) -> None:
    port = free_port()
    queue, exporter = make(port, tmp_path)
    await queue.start(Host(SelfMetrics()))
    for step in range(10):
        queue.enqueue(batch(step))  # synchronous: on disk when it returns
    assert queue.lanes is not None and queue.lanes.wal is not None
    assert queue.lanes.wal.pending_bytes > 0
    assert exporter.config.sending_queue.storage is not None
    await queue.shutdown(0.0)

    receiver = Receiver()
    async with serve(receiver, port):
        queue, exporter = make(port, tmp_path)
        await queue.start(Host(SelfMetrics()))
        try:
            await wait_until(lambda: len(receiver.accepted) >= 40)
        finally:
            await queue.shutdown(0.0)
    assert len(receiver.accepted) == 40
    by_series: dict[str, list[int]] = {}
    for labels, _, ts in receiver.accepted:
        by_series.setdefault(dict(labels)["__name__"] + str(labels), []).append(ts)
    assert all(v == sorted(v) and len(v) == 10 for v in by_series.values())


async def test_full_queue_refuses_with_queue_full(tmp_path: Path) -> None:
    queue, _ = make(free_port(), tmp_path, max_disk_bytes=2000)
    host = Host(SelfMetrics())
    await queue.start(host)
    try:
        with pytest.raises(QueueFullError):
            for step in range(100):
                queue.enqueue(batch(step))
        failed = host.telemetry.registry.get_sample_value(
            "metricgate_exporter_enqueue_failed_points_total",
            {"exporter": "prometheus_remote_write"},
        )
        assert failed
    finally:
        await queue.shutdown(0.0)


_SHARD_KEYS = """
import time
from metricgate.exporters.prometheus_remote_write import Encoder
from metricgate.translate import PrometheusTranslator
from tests.support.batches import number_batch
encoder = Encoder(PrometheusTranslator(), external_labels={"cluster": "eu1"})
encoder.encode(number_batch({"a": 1, "b": 2, "c": 3}), 4, time.monotonic())
print(sorted(state.key for state in encoder._states.values()))
"""


def test_shard_keys_are_stable() -> None:
    # Not Python's randomised hash(): a series keeps its shard across restarts.
    keys = {
        subprocess.run(
            [sys.executable, "-c", _SHARD_KEYS],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    assert len(keys) == 1
    assert len(set(ast.literal_eval(keys.pop()))) == 3
