"""The on-disk sending queue (`sending_queue.storage`): batches go through a write-ahead log.

`PersistentQueue.append` encodes a `Batch` as an OTLP `ExportMetricsServiceRequest` (the otlp
exporter's encoder) and appends it, as one record, to a one-shard `WriteAheadLog` under
`<storage.directory>/<exporter id>/` before the receiver answers its client. The
`ExporterQueue` workers take records in append order (`get`), decode them with the OTLP
receiver's decoder, export them, and mark them `done`; the ack offset then advances over the
longest prefix of finished records (workers may finish out of order) and is persisted (at once
with `fsync: always`, otherwise at most every 100 ms). Records left by a previous run are replayed
first. Crash or shutdown mid-export leaves a record unacknowledged: it is sent again after the
restart (at-least-once).

Round trip through OTLP protobuf keeps every metric kind, temporality, monotonicity, unit,
description, resource and scope (with schema URLs), start timestamps, flags (no recorded value),
exemplars and histogram min/max. What it cannot keep: integer values come back as floats (the
model already holds floats), and bytes attributes, kept by the model as base64 text, come back as
that text.

Invariant: a record is acknowledged only once it was delivered, dropped as permanent, or given up
on after retries; never merely because it was read.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from metricgate.model import Batch
from metricgate.pipeline.storage import (
    DiskQueue,
    StorageSettings,
    drop_counter,
    queue_directory,
    watch_disk_queue,
)
from metricgate.pipeline.wal import ShardLog, WriteAheadLog
from metricgate.pipeline.wal_records import HEADER_V1, find_magic, parse
from metricgate.telemetry.metrics import SelfMetrics
from metricgate.wire.otlp.decode import ProtobufDecoder
from metricgate.wire.otlp.encode import OtlpEncoder

log = logging.getLogger(__name__)

__all__ = [
    "BatchCodec",
    "DiskQueue",
    "Entry",
    "PersistentQueue",
    "StorageSettings",
    "UnencodableBatch",
    "count_records",
    "drop_counter",
    "open_for_exporter",
    "queue_directory",
    "watch_disk_queue",
]

READ_AHEAD_BYTES = 4 * 1024 * 1024
"""Records read from disk at a time (at least one); they stay unacknowledged until delivered."""
DECODER_MAX_SERIES = 1_000_000


class UnencodableBatch(ValueError):
    """The batch cannot be written as OTLP (e.g. an exemplar trace id that is not hex)."""


class BatchCodec:
    """`Batch` <-> OTLP protobuf bytes, with the OTLP codec of `metricgate.wire.otlp`: what
    metricgate writes for itself to read back (queues, state snapshots, batches between workers),
    so native Prometheus metrics keep their flag (`NATIVE_MARK`)."""

    def __init__(self) -> None:
        self.encoder: OtlpEncoder = OtlpEncoder(mark_native=True)
        self.decoder: ProtobufDecoder = ProtobufDecoder(DECODER_MAX_SERIES, native_mark=True)

    def encode(self, batch: Batch) -> bytes:
        """The batch as request bytes; `UnencodableBatch` if it cannot be represented."""
        try:
            return self.encoder.encode(batch)
        except (ValueError, TypeError, struct.error) as exc:
            raise UnencodableBatch(str(exc)) from exc

    def decode(self, payload: bytes) -> tuple[Batch, int]:
        """The batch in `payload` and how many of its points the decoder rejected."""
        result = self.decoder.decode(payload)
        return result.batch, result.rejected


@dataclass(slots=True)
class Entry:
    """A record handed to a worker: its end offset in the log and its decoded batch."""

    end: int
    batch: Batch
    points: int
    done: bool = False


class PersistentQueue:
    """One exporter's on-disk queue: append, read in order, acknowledge (see module docstring)."""

    def __init__(
        self,
        directory: Path,
        settings: StorageSettings,
        name: str,
        on_drop: Callable[[str, int, int], None] | None = None,
    ) -> None:
        self.directory = directory
        self.settings = settings
        self.name = name
        self._on_drop = on_drop
        self.codec = BatchCodec()
        self.wal: WriteAheadLog | None = None
        self.pending_records = 0
        """Records on disk not yet acknowledged (batches waiting or in flight)."""
        self._buffer: deque[tuple[int, bytes, int, bool]] = deque()
        self._in_flight: deque[Entry] = deque()
        self._wake = asyncio.Event()
        self._closing = False

    # -- lifecycle --------------------------------------------------------------------------

    def open(self) -> None:
        """Open (or recover) the log; raises `RuntimeError` if another process holds it."""
        max_disk = self.settings.max_disk_bytes
        segment = max(4096, min(self.settings.segment_bytes, max_disk // 4))
        self.wal = WriteAheadLog(
            self.directory,
            1,
            max_disk_bytes=max_disk,
            fsync=self.settings.fsync,
            full_policy=self.settings.full_policy,
            segment_bytes=segment,
            name=self.name,
            on_drop=self._dropped,
            keyring=self.settings.keyring(),
        )
        self.wal.start()
        self.pending_records = count_records(self.shard)
        if self.wal.pending_bytes:
            log.info(
                "persistent sending queue: replaying data left by the previous run",
                extra={
                    "exporter": self.name,
                    "bytes": self.wal.pending_bytes,
                    "batches": self.pending_records,
                },
            )

    def stop(self) -> None:
        """Wake waiting workers: `get` answers None from now on."""
        self._closing = True
        self._wake.set()

    async def close(self) -> None:
        """Persist the ack offset, fsync and release the directory."""
        self.stop()
        wal, self.wal = self.wal, None
        if wal is None:
            return
        if wal.pending_bytes:
            log.info(
                "persistent sending queue: data left on disk for the next start",
                extra={
                    "exporter": self.name,
                    "bytes": wal.pending_bytes,
                    "batches": self.pending_records,
                },
            )
        await wal.close()

    # -- state ------------------------------------------------------------------------------

    @property
    def shard(self) -> ShardLog:
        assert self.wal is not None, "persistent queue is not open"
        return self.wal.shards[0]

    @property
    def pending_bytes(self) -> int:
        return self.wal.pending_bytes if self.wal is not None else 0

    @property
    def disk_bytes(self) -> int:
        return self.wal.disk_bytes if self.wal is not None else 0

    def oldest_ms(self) -> int | None:
        return self.wal.oldest_ms() if self.wal is not None else None

    def has_room(self) -> bool:
        if self.wal is None or self._closing:
            return False
        return self.settings.full_policy == "drop_oldest" or (
            self.wal.pending_bytes < self.settings.max_disk_bytes
        )

    def _dropped(self, reason: str, records: int, points: int) -> None:
        if reason == "queue_full":
            self.pending_records = max(0, self.pending_records - records)
        if self._on_drop is not None:
            self._on_drop(reason, records, points)

    # -- writing ----------------------------------------------------------------------------

    def append(self, batch: Batch) -> None:
        """Write `batch` to disk (synchronously), or raise `QueueFullError` / `UnencodableBatch`."""
        if self.wal is None or self._closing:
            raise RuntimeError(f"persistent queue {self.name} is not open")
        payload = self.codec.encode(batch)
        points = batch.point_count()
        self.wal.append([[(payload, points, points)]])
        self.pending_records += 1
        self._wake.set()

    # -- reading and acknowledging ----------------------------------------------------------

    async def get(self) -> Entry | None:
        """The next record in append order, decoded; None once the queue is stopping.

        Records that do not decode are dropped here (counted as `decode`) and acknowledged.
        """
        while not self._closing:
            if not self._buffer and not self._refill():
                self._wake.clear()
                await self._wake.wait()
                continue
            end, payload, points, intact = self._buffer.popleft()
            if end <= self.shard.acked:
                continue  # its segment was dropped (drop_oldest) after it was read
            entry = Entry(end, Batch(), points)
            self._in_flight.append(entry)
            if not intact:  # failed authentication: counted by the log, acknowledged here
                self.done(entry)
                continue
            try:
                entry.batch, rejected = self.codec.decode(payload)
            except Exception as exc:  # DecodeError, or a bug: never wedge the queue on one record
                log.error(
                    "persistent sending queue: record cannot be decoded; dropped",
                    extra={"exporter": self.name, "points": points, "error": str(exc)},
                )
                self._dropped("decode", 1, points)
                self.done(entry)
                continue
            if rejected:
                self._dropped("decode", 0, rejected)
            return entry
        return None

    def _refill(self) -> bool:
        records = self.shard.read(1 << 62, READ_AHEAD_BYTES)
        self._buffer.extend((r.end, r.payload, r.points, r.intact) for r in records)
        return bool(records)

    def done(self, entry: Entry) -> None:
        """`entry` was delivered or given up on; acknowledge the finished prefix."""
        entry.done = True
        finished = end = 0
        while self._in_flight and self._in_flight[0].done:
            end = self._in_flight.popleft().end
            finished += 1
        if finished and self.wal is not None:
            self.pending_records = max(0, self.pending_records - finished)
            try:
                self.shard.delivered(end)
            except OSError:
                log.exception(
                    "persistent sending queue: could not persist the ack offset",
                    extra={"exporter": self.name},
                )


def count_records(shard: ShardLog) -> int:
    """Valid records between the ack offset and the end of `shard` (read once, at start)."""
    count = 0
    for segment in shard.segments:
        if segment.end <= shard.acked or not segment.size:
            continue
        data = segment.path.read_bytes()
        pos = max(shard.data_start(segment), shard.acked - segment.base)
        while pos + HEADER_V1.size <= len(data):
            record, size = parse(data, pos)
            if record is not None:
                count += 1
                pos += size
                continue
            nxt = find_magic(data, pos + 1)
            if nxt < 0:
                break
            pos = nxt
    return count


def open_for_exporter(
    storage: StorageSettings, exporter_id: str, telemetry: SelfMetrics
) -> PersistentQueue:
    """Open `exporter_id`'s queue under `storage.directory` and register its own telemetry."""
    queue = PersistentQueue(
        queue_directory(storage, exporter_id),
        storage,
        exporter_id,
        drop_counter(telemetry, exporter_id),
    )
    queue.open()
    watch_disk_queue(telemetry, exporter_id, queue, storage.max_disk_bytes)
    return queue
