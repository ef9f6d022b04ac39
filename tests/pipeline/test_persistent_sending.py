"""`ExporterQueue` with `sending_queue.storage`: write-through, retries, drops, restart."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from metricgate.config import load_config_text
from metricgate.errors import ConfigError, PermanentError, QueueFullError, RetryableError
from metricgate.model import Batch, Exemplar
from metricgate.pipeline import Exporter
from metricgate.pipeline.host import Host
from metricgate.pipeline.queue import ExporterQueue, QueueSettings, RetrySettings
from metricgate.pipeline.service import Service
from metricgate.telemetry import SelfMetrics
from tests.support.batches import number_batch
from tests.support.capture import CaptureExporter, InjectReceiver, registry_with_capture
from tests.support.poll import wait_until

T = 1_700_000_000_000_000_000
FAST_RETRY = RetrySettings(initial_interval=0.01, max_interval=0.02, max_elapsed_time=0)


class Backend(Exporter):
    """Records delivered batches; `failures` holds errors to raise first, one per attempt."""

    def __init__(self, failures: list[Exception] | None = None) -> None:
        super().__init__("otlp/backend")
        self.failures = failures or []
        self.batches: list[Batch] = []
        self.attempts = 0

    async def export(self, batch: Batch) -> None:
        self.attempts += 1
        if self.failures:
            raise self.failures.pop(0)
        self.batches.append(batch)

    def steps(self) -> list[int]:
        return [int(b.metrics[0].values[0]) for b in self.batches]  # type: ignore[arg-type]


def step_batch(step: int) -> Batch:
    return number_batch({"a": float(step), "b": float(step)}, timestamp=T + step * 10**9)


def make(
    backend: Backend,
    path: Path,
    consumers: int = 1,
    retry: RetrySettings = FAST_RETRY,
    **kw: object,
) -> ExporterQueue:
    storage = {"directory": str(path), **kw}
    settings = QueueSettings.model_validate({"num_consumers": consumers, "storage": storage})
    return ExporterQueue(backend, settings, retry)


def sample(telemetry: SelfMetrics, name: str, **labels: str) -> float:
    return telemetry.registry.get_sample_value(name, labels) or 0.0


async def test_batches_are_on_disk_before_enqueue_returns_and_delivered_in_order(
    tmp_path: Path,
) -> None:
    backend = Backend([RetryableError("busy", retry_after=0.01)] * 3)
    telemetry = SelfMetrics()
    queue = make(backend, tmp_path)
    await queue.start(Host(telemetry))
    try:
        for step in range(20):
            queue.enqueue(step_batch(step))
        assert list((tmp_path / "otlp_backend").rglob("*.seg"))
        await wait_until(lambda: len(backend.batches) == 20)
        assert backend.steps() == list(range(20))
        await wait_until(lambda: queue.size == 0)
        assert sample(telemetry, "metricgate_exporter_sent_points_total", exporter="otlp/backend")
        assert sample(telemetry, "metricgate_exporter_retries_total", exporter="otlp/backend") == 3
        assert (
            sample(telemetry, "metricgate_exporter_queue_pending_bytes", exporter="otlp/backend")
            == 0
        )
        assert sample(
            telemetry, "metricgate_exporter_queue_disk_capacity_bytes", exporter="otlp/backend"
        ) == float(1 << 30)
    finally:
        await queue.shutdown(time.monotonic() + 1)


async def test_permanent_errors_are_dropped_counted_and_acknowledged(tmp_path: Path) -> None:
    backend = Backend([PermanentError("bad")])
    telemetry = SelfMetrics()
    queue = make(backend, tmp_path, consumers=4)
    await queue.start(Host(telemetry))
    try:
        for step in range(5):
            queue.enqueue(step_batch(step))
        await wait_until(lambda: len(backend.batches) == 4)
        await wait_until(lambda: queue.size == 0)
        failed = sample(
            telemetry,
            "metricgate_exporter_send_failed_points_total",
            exporter="otlp/backend",
            reason="permanent",
        )
        assert failed == 2
    finally:
        await queue.shutdown(time.monotonic() + 1)
    # Nothing comes back after a restart: the dropped batch was acknowledged too.
    again = Backend()
    queue = make(again, tmp_path)
    await queue.start(Host(SelfMetrics()))
    try:
        assert queue.size == 0
        # One consumer delivers in order: had anything come back, it would arrive before this.
        queue.enqueue(step_batch(99))
        await wait_until(lambda: bool(again.batches))
    finally:
        await queue.shutdown(time.monotonic() + 1)
    assert again.steps() == [99]


async def test_undelivered_batches_survive_shutdown_and_replay_first(tmp_path: Path) -> None:
    down = Backend([RetryableError("down", retry_after=0.01)] * 10_000)
    telemetry = SelfMetrics()
    queue = make(down, tmp_path)
    await queue.start(Host(telemetry))
    for step in range(10):
        queue.enqueue(step_batch(step))
    await wait_until(lambda: down.attempts > 3)
    assert queue.size == 10
    assert sample(telemetry, "metricgate_exporter_queue_pending_bytes", exporter="otlp/backend")
    await queue.shutdown(time.monotonic() + 1)
    lost = sample(
        telemetry,
        "metricgate_exporter_send_failed_points_total",
        exporter="otlp/backend",
        reason="retries_exhausted",
    )
    assert lost == 0 and down.batches == []

    up = Backend()
    queue = make(up, tmp_path, consumers=3)
    await queue.start(Host(SelfMetrics()))
    try:
        assert queue.size == 10
        queue.enqueue(step_batch(10))
        await wait_until(lambda: len(up.batches) == 11)
        assert sorted(up.steps()) == list(range(11))
        assert up.steps()[:3] == [0, 1, 2]  # three consumers start on the oldest records
    finally:
        await queue.shutdown(time.monotonic() + 1)


async def test_full_disk_refuses_with_queue_full_and_counts(tmp_path: Path) -> None:
    backend = Backend([RetryableError("down", retry_after=0.01)] * 10_000)
    telemetry = SelfMetrics()
    queue = make(backend, tmp_path, max_disk_bytes="8KiB")
    await queue.start(Host(telemetry))
    try:
        refused = 0
        for step in range(100):
            try:
                queue.enqueue(step_batch(step))
            except QueueFullError as exc:
                assert "full" in str(exc)
                refused += 1
        assert 0 < refused < 100
        enqueue_failed = sample(
            telemetry, "metricgate_exporter_enqueue_failed_points_total", exporter="otlp/backend"
        )
        assert enqueue_failed == 2 * refused
    finally:
        await queue.shutdown(time.monotonic() + 1)


async def test_drop_oldest_is_counted(tmp_path: Path) -> None:
    backend = Backend([RetryableError("down", retry_after=0.01)] * 10_000)
    telemetry = SelfMetrics()
    queue = make(backend, tmp_path, max_disk_bytes="16KiB", full_policy="drop_oldest")
    await queue.start(Host(telemetry))
    try:
        for step in range(300):
            queue.enqueue(step_batch(step))
        records = sample(
            telemetry,
            "metricgate_exporter_queue_dropped_records_total",
            exporter="otlp/backend",
            reason="queue_full",
        )
        points = sample(
            telemetry,
            "metricgate_exporter_send_failed_points_total",
            exporter="otlp/backend",
            reason="queue_full",
        )
        assert records > 0 and points == 2 * records
        assert queue.disk is not None and queue.disk.pending_bytes <= 16 * 1024
    finally:
        await queue.shutdown(time.monotonic() + 1)


CONFIG = """
receivers: {inject: {}}
exporters:
  capture:
    sending_queue: {storage: {directory: "DIR", max_disk_bytes: 64MiB, fsync: always}}
service:
  telemetry: {metrics: {address: ""}}
  pipelines:
    metrics: {receivers: [inject], exporters: [capture]}
"""


async def test_service_writes_through_when_configured(tmp_path: Path) -> None:
    config = load_config_text(CONFIG.replace("DIR", str(tmp_path)), registry_with_capture(), {})
    service = Service(config)
    await service.start()
    try:
        await InjectReceiver.instances["inject"].push(step_batch(7))
        capture = CaptureExporter.instances["capture"]
        await wait_until(lambda: capture.batches)
        assert capture.batches[0].point_count() == 2
        assert (tmp_path / "capture" / "shard-000").is_dir()
    finally:
        await service.shutdown()


def test_storage_keys_are_checked() -> None:
    with pytest.raises(ConfigError) as info:
        load_config_text(
            CONFIG.replace("DIR", "/tmp/x").replace("fsync: always", "fsync: sometimes"),
            registry_with_capture(),
            {},
        )
    assert "exporters.capture.sending_queue.storage.fsync" in str(info.value)


REMOTE_WRITE = """
exporters:
  prometheus_remote_write:
    endpoint: http://127.0.0.1:9/api/v1/write
    QUEUE
receivers: {inject: {}}
service:
  pipelines:
    metrics: {receivers: [inject], exporters: [prometheus_remote_write]}
"""


def _remote_write_queue(queue: str) -> QueueSettings:
    config = load_config_text(REMOTE_WRITE.replace("QUEUE", queue), registry_with_capture(), {})
    settings = config.exporters["prometheus_remote_write"].config.sending_queue
    assert isinstance(settings, QueueSettings)
    return settings


def test_remote_write_queue_directory_is_an_alias_of_sending_queue_storage() -> None:
    storage = _remote_write_queue(
        "sending_queue: {storage: {directory: /tmp/q, fsync: always, max_disk_bytes: 64MiB}}"
    )
    alias = _remote_write_queue("queue: {directory: /tmp/q, fsync: always, max_disk_bytes: 64MiB}")
    assert storage == alias
    assert alias.storage is not None and alias.storage.max_disk_bytes == 64 << 20
    assert alias.num_consumers == 1
    assert _remote_write_queue("sending_queue: {queue_size: 5}").num_consumers == 1
    with pytest.raises(ConfigError) as info:
        _remote_write_queue(
            "queue: {directory: /tmp/a}\n    sending_queue: {storage: {directory: /tmp/b}}"
        )
    message = str(info.value)
    assert "sending_queue.storage" in message and "queue.directory" in message
    with pytest.raises(ConfigError) as info:
        _remote_write_queue("queue: {directory: /tmp/q, fsync: sometimes}")
    assert "exporters.prometheus_remote_write.queue.fsync" in str(info.value)


async def test_batch_that_cannot_be_encoded_is_dropped_as_permanent(tmp_path: Path) -> None:
    bad = step_batch(1)
    bad.metrics[0].add_exemplars(0, (Exemplar(1.0, T, trace_id="not hex"),))
    backend = Backend()
    telemetry = SelfMetrics()
    queue = make(backend, tmp_path)
    await queue.start(Host(telemetry))
    try:
        queue.enqueue(bad)  # the client is not asked to retry what can never be sent
        queue.enqueue(step_batch(2))
        await wait_until(lambda: backend.batches)
        assert backend.steps() == [2]
        failed = sample(
            telemetry,
            "metricgate_exporter_send_failed_points_total",
            exporter="otlp/backend",
            reason="permanent",
        )
        assert failed == 2
    finally:
        await queue.shutdown(time.monotonic() + 1)
