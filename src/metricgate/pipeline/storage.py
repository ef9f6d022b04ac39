"""What both disk queues share: the `sending_queue.storage` settings, where a queue lives, how
its drops are counted and the disk gauges.

The two disk queues are the persistent sending queue (`persistent_queue.py`, one log of OTLP
batches) and remote-write's ordered lanes (`lanes.py`, one log per lane); both keep their data
in a `WriteAheadLog` under `<storage.directory>/<exporter id>/`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from metricgate import role
from metricgate.config.types import ByteSize
from metricgate.errors import ConfigError
from metricgate.pipeline.encryption import EncryptionConfig, Keyring
from metricgate.telemetry.metrics import SelfMetrics

__all__ = ["DiskQueue", "StorageSettings", "drop_counter", "queue_directory", "watch_disk_queue"]


class StorageSettings(BaseModel):
    """`sending_queue.storage`: the sending queue on disk (the keys of remote-write's `queue`).

    With storage, every batch is written to disk before the receiver answers its client and only
    removed once the exporter delivered it (or gave up on it): a crash or restart loses nothing
    that was accepted. The disk budget, not `queue_size`, then bounds the queue.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    directory: str = Field(min_length=1)
    """Where queues live; each exporter gets `<directory>/<exporter id>/`."""
    max_disk_bytes: ByteSize = Field(default=1 << 30, gt=0)
    """Unacknowledged bytes the queue may hold."""
    fsync: Literal["always", "batch", "never"] = "batch"
    """`always`: fsync before answering the client; `batch`: at most every 100 ms (a process crash
    loses nothing, a power loss up to 100 ms); `never`: leave it to the OS."""
    full_policy: Literal["refuse", "drop_oldest"] = "refuse"
    """When full: refuse new data with a retryable error (429), or drop the oldest segments."""
    segment_bytes: ByteSize = Field(default=16 << 20, ge=4096)
    """Size at which a segment file is closed and a new one begun (at most a quarter of
    `max_disk_bytes` is used, so `drop_oldest` always has a sealed segment to drop)."""
    encryption: EncryptionConfig | None = None
    """Seal every record with AES-256-GCM under `key_file` (see `wal_records.py`); the key
    files are read when the config is loaded, so a missing or malformed key is a config error."""

    @field_validator("encryption")
    @classmethod
    def _keys_readable(cls, value: EncryptionConfig | None) -> EncryptionConfig | None:
        if value is not None:
            try:
                Keyring.from_config(value, "")
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        return value

    def keyring(self) -> Keyring | None:
        """The keys of `encryption`, read now (None without encryption)."""
        if self.encryption is None:
            return None
        return Keyring.from_config(self.encryption, "sending_queue.storage.encryption")


class DiskQueue(Protocol):
    """What the disk gauges read: a `PersistentQueue` or a lanes' `WriteAheadLog`."""

    @property
    def pending_bytes(self) -> int: ...

    @property
    def disk_bytes(self) -> int: ...

    def oldest_ms(self) -> int | None: ...


def queue_directory(storage: StorageSettings, exporter_id: str) -> Path:
    """`<storage.directory>/<exporter id>` with characters unsafe in a file name replaced; under
    `--workers N`, `<storage.directory>/worker-<index>/<exporter id>`: each worker's own queue."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", exporter_id)
    return role.CURRENT.own_directory(storage.directory) / name


def drop_counter(telemetry: SelfMetrics, exporter_id: str) -> Callable[[str, int, int], None]:
    """The callback a disk queue reports drops to: records by reason, and their points as
    send-failed (`queue_full`, `queue_corrupt`, `queue_truncated`, `queue_decode`,
    `queue_integrity`)."""

    def dropped(reason: str, records: int, points: int) -> None:
        if records:
            telemetry.exporter_queue_dropped.labels(exporter_id, reason).inc(records)
        if points:
            label = reason if reason.startswith("queue") else f"queue_{reason}"
            telemetry.exporter_send_failed.labels(exporter_id, label).inc(points)

    return dropped


def watch_disk_queue(
    telemetry: SelfMetrics, exporter_id: str, queue: DiskQueue, max_disk_bytes: int
) -> None:
    """Register the disk gauges of `exporter_id`'s queue (read at scrape time)."""
    key = (exporter_id,)
    telemetry.gauge(
        "metricgate_exporter_queue_disk_bytes",
        "Bytes of segment files an exporter's persistent sending queue holds.",
        ["exporter"],
    ).observe(lambda: {key: float(queue.disk_bytes)})
    telemetry.gauge(
        "metricgate_exporter_queue_pending_bytes",
        "Unacknowledged bytes in an exporter's persistent sending queue.",
        ["exporter"],
    ).observe(lambda: {key: float(queue.pending_bytes)})
    telemetry.gauge(
        "metricgate_exporter_queue_disk_capacity_bytes",
        "max_disk_bytes of an exporter's persistent sending queue (the bound on pending bytes).",
        ["exporter"],
    ).observe(lambda: {key: float(max_disk_bytes)})

    def oldest_age() -> dict[tuple[str, ...], float]:
        oldest = queue.oldest_ms()
        return {key: 0.0 if oldest is None else max(0.0, time.time() - oldest / 1000)}

    telemetry.gauge(
        "metricgate_exporter_queue_oldest_age_seconds",
        "Age of the oldest unacknowledged batch in an exporter's persistent sending queue.",
        ["exporter"],
    ).observe(oldest_age)
