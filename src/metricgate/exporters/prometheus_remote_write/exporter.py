"""The `prometheus_remote_write` exporter: pushes the pipeline's metrics with remote-write.

Protocol 1.0 by default; with `protobuf_message: io.prometheus.write.v2.Request`, 2.0 until the
receiver answers 415, then 1.0 for the rest of the process (the shards convert and fall back, see
`shards.py`; the `metricgate_exporter_remote_write_protocol` gauge shows which is in use).

`export(batch)` encodes the batch into per-shard fragments (`encoder.py`) and queues them on the
shards (`shards.py`), waiting while a shard is full: that wait back-pressures the sending queue,
and through it the receivers. Shards send concurrently; each series always maps to one shard.

Resharding: when `export` had to wait on a full shard while sends succeed, the shard count doubles
(up to `shards.max`); after a minute without any wait it halves (down to `shards.min`). Before the
count changes every shard is drained, so no series ever has samples queued on two shards.

Persistent queue (`queue.directory` set): the pipeline's `ExporterQueue` calls `append(batch)`
synchronously instead of queueing in memory; `append` encodes into per-shard records and writes
them to the write-ahead log (`wal.py`) before the receiver answers. One `PersistentSender` per
shard log (`persistent.py`) reads, sends and acks. The shard count is fixed at `shards.max`.

Invariant: only one coroutine encodes and queues at a time (`_lock`: `export`, the expiry timer
and resharding), so the per-series order the encoder produces is the order shards receive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from pathlib import Path

from metricgate.errors import QueueFullError, UnavailableError
from metricgate.exporters.prometheus_remote_write.client import Client
from metricgate.exporters.prometheus_remote_write.config import RemoteWriteExporterConfig
from metricgate.exporters.prometheus_remote_write.encoder import Encoder
from metricgate.exporters.prometheus_remote_write.persistent import PersistentSender
from metricgate.exporters.prometheus_remote_write.shards import Shard
from metricgate.exporters.prometheus_remote_write.telemetry import (
    RemoteWriteMetrics,
    remote_write_metrics,
)
from metricgate.exporters.prometheus_remote_write.wire import Fragment
from metricgate.model import Batch
from metricgate.pipeline.component import Exporter
from metricgate.pipeline.host import Host
from metricgate.pipeline.registry import exporter_factory
from metricgate.pipeline.wal import WriteAheadLog

log = logging.getLogger(__name__)

GROW_AFTER_SUCCESS_S = 10.0
"""Only grow while some send succeeded this recently: more shards cannot help a dead backend."""
SHRINK_AFTER_IDLE_S = 60.0


class RemoteWriteExporter(Exporter):
    """Encodes batches and sends them through shards (see module docstring)."""

    def __init__(self, component_id: str, config: RemoteWriteExporterConfig) -> None:
        super().__init__(component_id)
        self.config = config
        self.translator = config.translator()
        self.encoder = Encoder(
            self.translator,
            external_labels=config.external_labels,
            send_staleness=config.send_staleness,
            target_info=config.target_info.enabled,
            max_samples=config.max_samples_per_send,
            max_bytes=config.max_batch_bytes,
        )
        self.client = Client(config)
        self.shards: list[Shard] = []
        self.last_success = 0.0
        """Wall-clock time of the last delivered request (0 before the first)."""
        self._last_success_monotonic = -1e9
        self._last_wait = time.monotonic()
        self._last_reshard = time.monotonic()
        self._lock = asyncio.Lock()
        self._host: Host | None = None
        self._metrics: RemoteWriteMetrics | None = None
        self._expiry: asyncio.Task[None] | None = None
        self.wal: WriteAheadLog | None = None
        self.senders: list[PersistentSender] = []

    @property
    def durable(self) -> bool:
        """True when batches go to the on-disk queue through `append` (see module docstring)."""
        return bool(self.config.queue.directory)

    def queue_path(self) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", self.component_id)
        return Path(self.config.queue.directory) / safe

    async def start(self, host: Host) -> None:
        self._host = host
        self._metrics = remote_write_metrics(host.telemetry)
        await self.client.start()
        if self.durable:
            self._start_wal(host)
        else:
            self.shards = self._new_shards(self.config.shards.min)
        self._expiry = asyncio.create_task(
            self._expire_forever(), name=f"{self.component_id}-expiry"
        )
        exporter_id = self.component_id
        host.telemetry.add_gauge(
            "metricgate_exporter_remote_write_shards",
            "Shards (concurrent senders) a remote-write exporter runs.",
            ["exporter"],
            lambda: {(exporter_id,): float(len(self.shards))},
        )
        client = self.client
        host.telemetry.add_gauge(
            "metricgate_exporter_remote_write_protocol",
            "Remote-write protocol an exporter sends with: 1 for the one in use, else 0.",
            ["exporter", "protocol"],
            lambda: {
                (exporter_id, protocol): float(client.protocol == protocol)
                for protocol in ("1.0", "2.0")
            },
        )
        host.telemetry.add_gauge(
            "metricgate_exporter_remote_write_last_send_timestamp_seconds",
            "Unix time of a remote-write exporter's last delivered request.",
            ["exporter"],
            lambda: {(exporter_id,): self.last_success},
        )
        host.telemetry.add_gauge(
            "metricgate_exporter_active_series",
            "Series an exporter currently holds.",
            ["exporter"],
            lambda: {(exporter_id,): float(len(self.encoder))},
        )

    def _start_wal(self, host: Host) -> None:
        settings = self.config.queue
        metrics = self._metrics
        assert metrics is not None
        exporter_id = self.component_id

        def dropped(reason: str, records: int, samples: int) -> None:
            metrics.queue_dropped.labels(exporter_id, reason).inc(records)
            if samples:
                metrics.dropped.labels(exporter_id, f"queue_{reason}").inc(samples)

        wal = self.wal = WriteAheadLog(
            self.queue_path(),
            self.config.shards.max,
            max_disk_bytes=settings.max_disk_bytes,
            fsync=settings.fsync,
            full_policy=settings.full_policy,
            segment_bytes=settings.segment_bytes,
            name=exporter_id,
            on_drop=dropped,
        )
        wal.start()
        self.shards = self._new_shards(wal.shard_count, start=False)
        self.senders = [
            PersistentSender(
                shard_log,
                shard,
                max_samples=self.config.max_samples_per_send,
                max_bytes=self.config.max_batch_bytes,
                flush_interval=self.config.flush_interval,
            )
            for shard_log, shard in zip(wal.shards, self.shards, strict=True)
        ]
        for sender in self.senders:
            sender.start()
        if wal.pending_bytes:
            log.info(
                "remote-write queue: replaying unacknowledged data",
                extra={"exporter": exporter_id, "bytes": wal.pending_bytes},
            )
        host.telemetry.add_gauge(
            "metricgate_exporter_remote_write_queue_disk_bytes",
            "Bytes of segment files a remote-write exporter's persistent queue holds.",
            ["exporter"],
            lambda: {(exporter_id,): float(wal.disk_bytes)},
        )
        host.telemetry.add_gauge(
            "metricgate_exporter_remote_write_queue_pending_bytes",
            "Unacknowledged bytes in a remote-write exporter's persistent queue.",
            ["exporter"],
            lambda: {(exporter_id,): float(wal.pending_bytes)},
        )

        def oldest_age() -> dict[tuple[str, ...], float]:
            oldest = wal.oldest_ms()
            age = 0.0 if oldest is None else max(0.0, time.time() - oldest / 1000)
            return {(exporter_id,): age}

        host.telemetry.add_gauge(
            "metricgate_exporter_remote_write_queue_oldest_age_seconds",
            "Age of the oldest unacknowledged record in a remote-write persistent queue.",
            ["exporter"],
            oldest_age,
        )

    def append(self, batch: Batch) -> None:
        """Encode `batch` and write it to the persistent queue, or raise a retryable error."""
        wal = self.wal
        if wal is None or not self.shards:
            raise UnavailableError(f"exporter {self.component_id} is not running")
        if wal.full_policy == "refuse" and wal.pending_bytes >= wal.max_disk_bytes:
            raise QueueFullError(f"persistent queue {self.component_id} is full", retry_after=1.0)
        per_shard, drops = self.encoder.encode(batch, wal.shard_count, time.monotonic())
        self._count_drops(drops)
        wal.append([[(f.data, f.samples) for f in fragments] for fragments in per_shard])

    async def shutdown(self) -> None:
        expiry, self._expiry = self._expiry, None
        if expiry is not None:
            expiry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await expiry
        senders, self.senders = self.senders, []
        await asyncio.gather(*(s.stop() for s in senders))
        wal, self.wal = self.wal, None
        if wal is not None:
            self.shards = []
            await wal.close()
        shards, self.shards = self.shards, []
        if shards:
            # Queued samples get up to one request timeout to go out; retries stop at once.
            deadline = time.monotonic() + self.config.timeout
            lost = sum(await asyncio.gather(*(s.close(deadline) for s in shards)))
            if lost:
                log.warning(
                    "shutdown deadline passed with samples unsent; they are lost",
                    extra={"exporter": self.component_id, "samples": lost},
                )
        await self.client.close()

    async def export(self, batch: Batch) -> None:
        if self.durable:
            self.append(batch)
            return
        async with self._lock:
            if not self.shards:
                raise UnavailableError(f"exporter {self.component_id} is not running")
            per_shard, drops = self.encoder.encode(batch, len(self.shards), time.monotonic())
            self._count_drops(drops)
            waited = await self._queue(per_shard)
            await self._maybe_reshard(waited)

    async def expire_now(self) -> int:
        """Forget series past `metric_expiration` (sending their StaleNaNs); returns how many."""
        async with self._lock:
            if not self.shards:
                return 0
            cutoff = time.monotonic() - self.config.metric_expiration
            per_shard, removed = self.encoder.expire(
                cutoff, len(self.shards), time.time_ns() // 1_000_000
            )
            if self.wal is not None:
                try:
                    self.wal.append([[(f.data, f.samples) for f in p] for p in per_shard])
                except QueueFullError:
                    lost = sum(f.samples for p in per_shard for f in p)
                    self._count_drops({"queue_full": lost} if lost else {})
                return removed
            await self._queue(per_shard)
            return removed

    async def _queue(self, per_shard: list[list[Fragment]]) -> bool:
        waited = False
        for shard, fragments in zip(self.shards, per_shard, strict=True):
            for fragment in fragments:
                waited = await shard.put(fragment) or waited
        return waited

    async def _maybe_reshard(self, waited: bool) -> None:
        now = time.monotonic()
        if waited:
            self._last_wait = now
        count, limits = len(self.shards), self.config.shards
        target = count
        if (
            waited
            and count < limits.max
            and now - self._last_success_monotonic < GROW_AFTER_SUCCESS_S
        ):
            target = min(limits.max, count * 2)
        elif (
            count > limits.min
            and now - self._last_wait > SHRINK_AFTER_IDLE_S
            and now - self._last_reshard > SHRINK_AFTER_IDLE_S
        ):
            target = max(limits.min, count // 2)
        if target != count:
            await self._reshard(target)

    async def _reshard(self, count: int) -> None:
        """Drain every shard, then run `count` of them (the series-to-shard map changes)."""
        await asyncio.gather(*(s.queue.join() for s in self.shards))
        old, self.shards = self.shards, self._new_shards(count)
        self._last_reshard = time.monotonic()
        deadline = time.monotonic() + self.config.timeout
        await asyncio.gather(*(s.close(deadline) for s in old))
        log.info(
            "remote-write resharded",
            extra={"exporter": self.component_id, "from": len(old), "to": count},
        )

    def _new_shards(self, count: int, start: bool = True) -> list[Shard]:
        assert self._metrics is not None
        shards = [
            Shard(
                self.component_id,
                i,
                self.client,
                self._metrics,
                self.config.retry_on_failure,
                capacity=self.config.shards.capacity,
                max_samples=self.config.max_samples_per_send,
                max_bytes=self.config.max_batch_bytes,
                flush_interval=self.config.flush_interval,
                on_success=self._succeeded,
            )
            for i in range(count)
        ]
        if start:
            for shard in shards:
                shard.start()
        return shards

    def _succeeded(self) -> None:
        self.last_success = time.time()
        self._last_success_monotonic = time.monotonic()

    def _count_drops(self, drops: dict[str, int]) -> None:
        if drops and self._host is not None:
            dropped = self._host.telemetry.exporter_dropped
            for reason, count in drops.items():
                dropped.labels(self.component_id, reason).inc(count)

    async def _expire_forever(self) -> None:
        # Sweep often enough that a series outlives its expiration by at most a tenth of it.
        interval = min(max(self.config.metric_expiration / 10, 0.02), 15.0)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.expire_now()
            except Exception:
                log.exception("expiry pass failed", extra={"exporter": self.component_id})


FACTORY = exporter_factory(
    "prometheus_remote_write",
    RemoteWriteExporterConfig,
    RemoteWriteExporter,
    "pushes the pipeline's metrics to a Prometheus remote-write endpoint (protocol 1.0 or 2.0)",
)
