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
  The lane count moves between `min` and `max` as Prometheus' remote-write shards do
  (`Resharding`): every 10 s it becomes the senders needed to send the incoming rate plus the
  backlog (time per sent sample x samples to send per second), unless that is within 30 % of
  the current count or no send succeeded within those 10 s. Up and down: a steady load goes
  out through few lanes in full requests. Every lane is drained before the count changes (under
  `_lock`, so nothing is queued meanwhile), so no key ever has pieces queued on two lanes.
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
import math
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

RESHARD_INTERVAL_S = 10.0
"""How often the lane count is reconsidered; a backlog is to be caught up within this time."""
RESHARD_TOLERANCE = 0.3
"""No change while the lanes needed are within this fraction of the count running."""
EWMA_WEIGHT = 0.2


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
        self.resharding = Resharding()
        self._lock = asyncio.Lock()
        self._closed = False

    def __len__(self) -> int:
        return len(self.lanes) or len(self.disk_lanes)

    async def _send(self, request: LaneRequest) -> None:
        # Looked up per attempt: a hot reload may put a new exporter behind running lanes.
        began = time.monotonic()
        await self.exporter.send(request)
        self.resharding.sent(request.samples, time.monotonic() - began)

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
            queued = samples = 0
            waited, began = False, time.monotonic()
            try:
                for lane, pieces in zip(lanes, per_lane, strict=True):
                    for piece in pieces:
                        waited = await lane.put(piece) or waited
                        queued += piece.points
                        samples += piece.samples
            except asyncio.CancelledError:
                encoded = sum(piece.points for pieces in per_lane for piece in pieces)
                self.delivery.failed("shutdown", encoded - queued)
                raise
            self.resharding.received(samples, time.monotonic() - began if waited else 0.0)
            await self._maybe_resize()

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

    async def _maybe_resize(self) -> None:
        """Under `_lock`: apply `Resharding.desired` when its interval is up."""
        now = time.monotonic()
        backlog = sum(lane.backlog for lane in self.lanes)
        target = self.resharding.desired(
            now, len(self.lanes), backlog, self._last_success_monotonic, self.settings
        )
        if target is not None:
            await self.resize(target)

    async def resize(self, count: int) -> None:
        """Drain every lane, then run `count` of them (the key-to-lane map changes)."""
        old = self.lanes
        await asyncio.gather(*(lane.drained() for lane in old))
        self.lanes = self._memory_lanes(count)
        await asyncio.gather(*(lane.close(time.monotonic()) for lane in old))
        log.info(
            "lanes resized",
            extra={"exporter": self.exporter_id, "from": len(old), "to": count},
        )

    def _memory_lanes(self, count: int) -> list[MemoryLane]:
        lanes = [MemoryLane(i, self.settings, self.delivery, self._send) for i in range(count)]
        for lane in lanes:
            lane.start()
        return lanes


class Resharding:
    """The lane count a memory `Lanes` needs, computed as Prometheus' queue manager does.

    Time per sample (seconds spent in successful sends / samples delivered, over the last
    interval) times the samples to send per second (the incoming rate, weighted per interval by
    `EWMA_WEIGHT` and counted per second not spent waiting for room, + backlog / interval) is the
    number of senders busy all the time; rounded up, clamped to min..max. Prometheus weights the
    time per sample as well; here it is the last interval's, so that once a burst is over (the
    first sight of many series, when the event loop was busy and every send slow) the shards come
    down within an interval instead of a minute or more."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.samples_in = self.samples_out = 0
        self.send_seconds = self.waited = 0.0
        self.rate_in: float | None = None
        """Samples queued per second (weighted); None before the first interval."""
        self.time_per_sample: float | None = None
        """Send seconds per delivered sample over the last interval that delivered any."""

    def received(self, samples: int, waited: float = 0.0) -> None:
        """`samples` queued after waiting `waited` seconds for room."""
        self.samples_in += samples
        self.waited += waited

    def sent(self, samples: int, seconds: float) -> None:
        self.samples_out += samples
        self.send_seconds += seconds

    def desired(
        self, now: float, count: int, backlog: int, last_success: float, settings: LaneSettings
    ) -> int | None:
        """A new lane count, or None: not yet time, no send succeeded lately, or no change."""
        elapsed = now - self.started
        if elapsed < RESHARD_INTERVAL_S:
            return None
        # Time spent waiting for room is time the producer could not hand over its data: the
        # incoming rate is what arrived per second of not waiting (Prometheus reads it from its
        # WAL, which never waits for the shards).
        rate_in = self.samples_in / max(elapsed - self.waited, elapsed / 10)
        if self.rate_in is not None:
            rate_in = self.rate_in + EWMA_WEIGHT * (rate_in - self.rate_in)
        self.rate_in = rate_in
        if self.samples_out:
            self.time_per_sample = self.send_seconds / self.samples_out
        self.started, self.samples_in, self.samples_out = now, 0, 0
        self.send_seconds = self.waited = 0.0
        time_per_sample = self.time_per_sample
        if time_per_sample is None or now - last_success > RESHARD_INTERVAL_S:
            return None  # nothing measured, or more lanes cannot help a dead backend
        needed = time_per_sample * (rate_in + backlog / RESHARD_INTERVAL_S)
        if (1 - RESHARD_TOLERANCE) * count <= needed <= (1 + RESHARD_TOLERANCE) * count:
            return None
        target = max(settings.min, min(settings.max, math.ceil(needed)))
        return target if target != count else None


__all__ = ["LaneRequest", "LaneSettings", "LanedExporter", "Lanes", "Piece", "Resharding"]
