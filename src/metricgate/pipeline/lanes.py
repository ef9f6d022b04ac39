"""Ordered lanes: parallel sending for exporters whose backend needs each key's data in order.

Remote-write must deliver a series' samples in timestamp order, yet one sender cannot keep up (the
Collector's single-consumer limit). A `LanedExporter` therefore partitions each batch into pieces
per lane (`partition(batch, lanes)`, the same key always on the same lane, e.g. `key % lanes`);
each lane joins its pieces, in order, into requests of at most `max_samples` samples and
`max_bytes` bytes (or whatever arrived within `flush_interval`), never joining pieces of two
tenants (`Piece.tenant`: one request, one `X-Scope-OrgID`), and sends one request at a time
through the core's `Delivery` (retries, counting, failure log: the same as every other exporter).
Lanes are the core's ordered mode, not a second core: `ExporterQueue` runs them instead of its
batch workers when the exporter is a `LanedExporter`. This module holds the contract and runs the
lanes; `lane.py` holds one lane of each kind.

- Memory (no `sending_queue.storage`): each lane holds up to `capacity` samples; `submit` waits
  while a lane is full, back-pressuring the sending queue in front (and through it the receivers).
  The lane count moves between `min` and `max`: it doubles when `submit` had to wait while sends
  succeed (within the last 10 s), and halves after a minute without waiting. Every lane is
  drained before the count changes, so no key ever has pieces queued on two lanes.
- Disk (`sending_queue.storage`): one write-ahead-log shard per lane (`wal.py`), `max` lanes.
  `append` writes the pieces before the receiver answers its client; each lane reads its shard in
  order, sends, and acknowledges only after the backend's answer (a 2xx, a refusal) or giving up.
  Shutdown lets requests in flight finish until the deadline; the rest stays on disk.

Invariant: one request in flight per lane, holding that lane's pieces in the order they were
queued; a piece is only ever queued on the lane `partition` chose, under `_lock` (memory) or
synchronously (disk), so concurrent submitters cannot interleave within a key.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from metricgate.errors import QueueFullError
from metricgate.model import Batch
from metricgate.pipeline.delivery import Delivery
from metricgate.pipeline.lane import DiskLane, LaneRequest, LaneSettings, MemoryLane, Piece
from metricgate.pipeline.persistent_queue import (
    StorageSettings,
    drop_counter,
    queue_directory,
    watch_disk_queue,
)
from metricgate.pipeline.retry import RetrySettings
from metricgate.pipeline.wal import WriteAheadLog
from metricgate.telemetry.metrics import SelfMetrics

log = logging.getLogger(__name__)

GROW_AFTER_SUCCESS_S = 10.0
"""Only grow while some send succeeded this recently: more lanes cannot help a dead backend."""
SHRINK_AFTER_IDLE_S = 60.0


Encode = Callable[[int], Sequence[Sequence[Piece]]]
"""Given the lane count, the pieces for each lane (in order)."""


@runtime_checkable
class LanedExporter(Protocol):
    """An exporter sent through ordered lanes (see module docstring)."""

    def lane_settings(self) -> LaneSettings: ...

    def partition(self, batch: Batch, lanes: int) -> Sequence[Sequence[Piece]]:
        """`batch` as pieces per lane; runs on the event loop, one call at a time."""

    async def send(self, request: LaneRequest) -> None:
        """One attempt; raise `RetryableError` / `PermanentError` as `export` does."""

    def attach(self, lanes: Lanes) -> None:
        """Called once the lanes run, so the exporter can `submit` data of its own (staleness)."""


class Lanes:
    """The lanes of one exporter, in memory or on disk (see module docstring)."""

    def __init__(
        self,
        exporter_id: str,
        exporter: LanedExporter,
        retry: RetrySettings,
        telemetry: SelfMetrics,
        storage: StorageSettings | None = None,
    ) -> None:
        self.exporter_id = exporter_id
        self.exporter = exporter
        self.settings = exporter.lane_settings()
        self.storage = storage
        self.telemetry = telemetry
        self.delivery = Delivery(
            exporter_id, retry, telemetry, durable=storage is not None, on_success=self._succeeded
        )
        self.lanes: list[MemoryLane] = []
        """The memory lanes (empty on disk)."""
        self.disk_lanes: list[DiskLane] = []
        self.wal: WriteAheadLog | None = None
        self.last_success = 0.0
        """Wall-clock time of the last delivered request (0 before the first)."""
        self._last_success_monotonic = -1e9
        self._last_wait = self._last_resize = time.monotonic()
        self._lock = asyncio.Lock()
        self._closed = False

    def __len__(self) -> int:
        return len(self.lanes) or len(self.disk_lanes)

    async def _send(self, request: LaneRequest) -> None:
        # Looked up per attempt: a hot reload may put a new exporter behind running lanes.
        await self.exporter.send(request)

    @property
    def durable(self) -> bool:
        return self.storage is not None

    async def start(self) -> None:
        storage = self.storage
        if storage is None:
            self.lanes = self._memory_lanes(self.settings.min)
            return
        wal = self.wal = WriteAheadLog(
            queue_directory(storage, self.exporter_id),
            self.settings.max,
            max_disk_bytes=storage.max_disk_bytes,
            fsync=storage.fsync,
            full_policy=storage.full_policy,
            segment_bytes=storage.segment_bytes,
            name=self.exporter_id,
            on_drop=drop_counter(self.telemetry, self.exporter_id),
            keyring=storage.keyring(),
        )
        wal.start()
        send = self._send
        self.disk_lanes = [
            DiskLane(i, self.settings, self.delivery, send, shard)
            for i, shard in enumerate(wal.shards)
        ]
        for lane in self.disk_lanes:
            lane.start()
        if wal.pending_bytes:
            log.info(
                "persistent sending queue: replaying data left by the previous run",
                extra={"exporter": self.exporter_id, "bytes": wal.pending_bytes},
            )
        watch_disk_queue(self.telemetry, self.exporter_id, wal, storage.max_disk_bytes)

    def append(self, encode: Encode) -> None:
        """Disk: encode and write to the log now, or raise `QueueFullError` (nothing encoded)."""
        wal = self.wal
        if wal is None or self._closed:
            raise QueueFullError(f"sending queue of exporter {self.exporter_id} is closed")
        if wal.full_policy == "refuse" and wal.pending_bytes >= wal.max_disk_bytes:
            raise QueueFullError(
                f"persistent queue of exporter {self.exporter_id} is full", retry_after=1.0
            )
        per_lane = encode(wal.shard_count)
        wal.append(
            [
                [(p.data, p.samples, p.points, p.tenant.encode()) for p in pieces]
                for pieces in per_lane
            ]
        )

    async def submit(self, encode: Encode) -> None:
        """Encode and queue in order: memory, waiting for room; disk, as `append`."""
        if self.wal is not None:
            try:
                self.append(encode)
            except QueueFullError as exc:
                log.debug("lanes: data of the exporter's own dropped", extra={"error": str(exc)})
            return
        if self._closed:
            return
        async with self._lock:
            lanes = self.lanes
            per_lane = encode(len(lanes))
            waited = False
            queued = 0
            try:
                for lane, pieces in zip(lanes, per_lane, strict=True):
                    for piece in pieces:
                        waited = await lane.put(piece) or waited
                        queued += piece.points
            except asyncio.CancelledError:
                encoded = sum(piece.points for pieces in per_lane for piece in pieces)
                self.delivery.failed("shutdown", encoded - queued)
                raise
            await self._maybe_resize(waited)

    async def close(self, deadline: float) -> None:
        """Memory: send what is queued until `deadline` (monotonic), then count the rest lost.
        Disk: finish the requests in flight until `deadline`; the rest stays on disk."""
        self._closed = True
        self.delivery.stopping.set()
        lanes: list[MemoryLane | DiskLane] = [*self.lanes, *self.disk_lanes]
        self.lanes, self.disk_lanes = [], []
        lost = sum(await asyncio.gather(*(lane.close(deadline) for lane in lanes)))
        if lost:
            log.warning(
                "shutdown deadline passed with points unsent; they are lost",
                extra={"exporter": self.exporter_id, "points": lost},
            )
        wal, self.wal = self.wal, None
        if wal is not None:
            if wal.pending_bytes:
                log.info(
                    "persistent sending queue: data left on disk for the next start",
                    extra={"exporter": self.exporter_id, "bytes": wal.pending_bytes},
                )
            await wal.close()

    # -- memory: resizing ---------------------------------------------------------------------

    def _succeeded(self) -> None:
        self.last_success = time.time()
        self._last_success_monotonic = time.monotonic()

    async def _maybe_resize(self, waited: bool) -> None:
        now = time.monotonic()
        if waited:
            self._last_wait = now
        count, settings = len(self.lanes), self.settings
        target = count
        if (
            waited
            and count < settings.max
            and now - self._last_success_monotonic < GROW_AFTER_SUCCESS_S
        ):
            target = min(settings.max, count * 2)
        elif (
            count > settings.min
            and now - self._last_wait > SHRINK_AFTER_IDLE_S
            and now - self._last_resize > SHRINK_AFTER_IDLE_S
        ):
            target = max(settings.min, count // 2)
        if target != count:
            await self.resize(target)

    async def resize(self, count: int) -> None:
        """Drain every lane, then run `count` of them (the key-to-lane map changes)."""
        old = self.lanes
        await asyncio.gather(*(lane.drained() for lane in old))
        self.lanes = self._memory_lanes(count)
        self._last_resize = time.monotonic()
        await asyncio.gather(*(lane.close(time.monotonic()) for lane in old))
        log.info(
            "lanes resized",
            extra={"exporter": self.exporter_id, "from": len(old), "to": count},
        )

    def _memory_lanes(self, count: int) -> list[MemoryLane]:
        lanes = [
            MemoryLane(i, self.settings, self.delivery, self._send) for i in range(count)
        ]
        for lane in lanes:
            lane.start()
        return lanes


__all__ = ["LaneRequest", "LaneSettings", "LanedExporter", "Lanes", "Piece"]
