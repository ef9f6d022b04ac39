"""The sending core every exporter sits behind: a bounded queue, workers, retries, telemetry.

`ExporterQueue.consume` never waits: it enqueues or raises `QueueFullError`, which the receiver
turns into a retryable answer for its client. What happens next depends on the exporter:

- A plain exporter: `num_consumers` workers each take a batch and deliver it with `Delivery`
  (`delivery.py`): `export()` makes one attempt; a `RetryableError` (or any unexpected exception)
  is retried with the one backoff (`retry.py`, honouring the backend's `Retry-After`) until
  `max_elapsed_time`; a `PartialExportError` counts what was delivered and retries only its
  `remaining` batch; a `PermanentError` drops (counted, logged once per interval).
- A `LanedExporter` (remote-write): ordered lanes (`lanes.py`) replace the workers; one consumer
  hands each batch to `partition`, the lanes send with the same `Delivery`.

With `sending_queue.storage` the queue is on disk: for a plain exporter `enqueue` writes the batch
through to a write-ahead log (`persistent_queue.py`) and workers read it back in order and
acknowledge it once delivered or given up on; for a laned exporter each lane has its own log.
Either way the batch is on disk before the receiver answers, and shutdown leaves what is
undelivered there for the next start.

Counting (`metricgate_exporter_*`, labelled `exporter`): sent and send-failed points on the
backend's answer (in `Delivery`), enqueue-failed when the queue refuses, retries per retried
attempt; failures are logged by one `FailureLog` per exporter (a warning when failing starts, a
summary while it lasts, one line when it recovers).

A hot reload that rebuilds an exporter with unchanged queue settings keeps the queue: `replace`
puts the new exporter behind it, workers and lanes look the exporter up per batch or attempt.

Invariant: a point is counted at most once as sent or send-failed, and only once the backend
answered, retrying ended, or shutdown lost it; an enqueue refused is counted as enqueue-failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from metricgate.config.types import ComponentConfig
from metricgate.errors import QueueFullError, UnavailableError
from metricgate.model import Batch
from metricgate.pipeline.component import Exporter
from metricgate.pipeline.delivery import Delivery, LeftOnDisk
from metricgate.pipeline.host import Host
from metricgate.pipeline.lanes import LanedExporter, Lanes
from metricgate.pipeline.persistent_queue import (
    PersistentQueue,
    StorageSettings,
    UnencodableBatch,
    open_for_exporter,
)
from metricgate.pipeline.retry import RetrySettings

log = logging.getLogger(__name__)

__all__ = ["ExporterConfig", "ExporterQueue", "QueueSettings", "RetrySettings", "StorageSettings"]


class QueueSettings(BaseModel):
    """`sending_queue`: how many batches may wait for an exporter, and how many workers send."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    queue_size: int = Field(default=1000, ge=1)
    num_consumers: int = Field(default=10, ge=1)
    storage: StorageSettings | None = None
    """Keep the queue on disk (see `StorageSettings`); unset = in memory, bounded by queue_size."""


class ExporterQueue:
    """Bounded queue + workers (or ordered lanes) in front of one exporter (module docstring)."""

    def __init__(
        self,
        exporter: Exporter,
        queue: QueueSettings | None = None,
        retry: RetrySettings | None = None,
    ) -> None:
        self.exporter = exporter
        self.settings = queue or QueueSettings()
        self.retry = retry or RetrySettings()
        self._queue: asyncio.Queue[Batch] = asyncio.Queue(self.settings.queue_size)
        self._workers: list[asyncio.Task[None]] = []
        self._accepting = False
        self._host: Host | None = None
        self.delivery: Delivery | None = None
        self.disk: PersistentQueue | None = None
        """The on-disk queue of a plain exporter while running with `sending_queue.storage`."""
        self.lanes: Lanes | None = None
        """The ordered lanes of a `LanedExporter` while running."""

    @property
    def component_id(self) -> str:
        return self.exporter.component_id

    @property
    def size(self) -> int:
        """Batches waiting (or in flight, on disk); 0 for ordered lanes on disk, which split
        batches into per-lane records (their disk gauges say how much waits)."""
        return self.disk.pending_records if self.disk is not None else self._queue.qsize()

    @property
    def capacity(self) -> int:
        return self.settings.queue_size

    async def start(self, host: Host) -> None:
        self._host = host
        await self.exporter.start(host)
        storage = self.settings.storage
        work: Callable[[], Coroutine[Any, Any, None]]
        workers = self.settings.num_consumers
        try:
            if isinstance(self.exporter, LanedExporter):
                lanes = self.lanes = Lanes(
                    self.component_id, self.exporter, self.retry, host.telemetry, storage
                )
                await lanes.start()
                self.exporter.attach(lanes)
                work, workers = self._work_lanes, 0 if lanes.durable else 1
            else:
                self.delivery = Delivery(
                    self.component_id, self.retry, host.telemetry, durable=storage is not None
                )
                if storage is not None:
                    self.disk = open_for_exporter(storage, self.component_id, host.telemetry)
                work = self._work if self.disk is None else self._work_disk
        except BaseException:
            await self.exporter.shutdown()
            raise
        self._accepting = True
        self._workers = [
            asyncio.create_task(work(), name=f"{self.component_id}-worker-{i}")
            for i in range(workers)
        ]

    async def consume(self, batch: Batch) -> None:
        self.enqueue(batch)

    def can_take(self, exporter: Exporter, queue: QueueSettings, retry: RetrySettings) -> bool:
        """Hot reload: whether `exporter` (the same id, rebuilt) can take over this queue with
        what it holds, its workers or lanes: the same settings and the same way of sending."""
        if queue != self.settings or retry != self.retry:
            return False
        laned = isinstance(exporter, LanedExporter)
        if laned != isinstance(self.exporter, LanedExporter):
            return False
        previous = self.exporter
        return not (
            isinstance(exporter, LanedExporter)
            and isinstance(previous, LanedExporter)
            and exporter.lane_settings() != previous.lane_settings()
        )

    def replace(self, exporter: Exporter) -> Exporter:
        """Put `exporter` (started, `can_take` said yes) behind this queue; return the previous
        one, for the caller to shut down. Synchronous: the next batch or attempt goes to it."""
        previous, self.exporter = self.exporter, exporter
        if self.lanes is not None and isinstance(exporter, LanedExporter):
            self.lanes.exporter = exporter
            exporter.attach(self.lanes)
        return previous

    def enqueue(self, batch: Batch) -> None:
        """Queue `batch` without waiting, or raise a retryable error."""
        if not self._accepting:
            raise UnavailableError(f"exporter {self.component_id} is not accepting data")
        lanes = self.lanes
        if lanes is not None and lanes.durable:
            exporter = self.exporter
            assert isinstance(exporter, LanedExporter)
            self._append(lambda b: lanes.append(partial(exporter.partition, b)), batch)
            return
        if self.disk is not None:
            self._append(self.disk.append, batch)
            return
        try:
            self._queue.put_nowait(batch)
        except asyncio.QueueFull:
            self._count_refused(batch)
            raise QueueFullError(
                f"sending queue of exporter {self.component_id} is full ({self.capacity} batches)",
                retry_after=1.0,
            ) from None

    def _count_refused(self, batch: Batch) -> None:
        if self._host is not None:
            self._host.telemetry.exporter_enqueue_failed.labels(self.component_id).inc(
                batch.point_count()
            )

    def _append(self, append: Callable[[Batch], None], batch: Batch) -> None:
        try:
            append(batch)
        except QueueFullError:
            self._count_refused(batch)
            raise
        except UnencodableBatch as exc:
            # Not representable on disk: the export would fail permanently in the same way.
            if self._host is not None:
                self._host.telemetry.exporter_send_failed.labels(
                    self.component_id, "permanent"
                ).inc(batch.point_count())
            log.error(
                "batch cannot be queued on disk; dropped",
                extra={"exporter": self.component_id, "error": str(exc)},
            )

    async def shutdown(self, deadline: float) -> None:
        """Stop accepting and finish until `deadline` (monotonic): a memory queue drains what is
        queued, a disk queue only finishes the exports in flight (the rest stays on disk)."""
        self._accepting = False
        workers, self._workers = self._workers, []
        if self.settings.storage is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), max(0.0, deadline - time.monotonic()))
            self._stop_delivering()
        else:
            self._stop_delivering()
            if workers:
                _, late = await asyncio.wait(workers, timeout=max(0.0, deadline - time.monotonic()))
                workers = list(late)
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        if self.lanes is not None:
            await self.lanes.close(deadline)
            self.lanes = None
        if self.disk is not None:
            await self.disk.close()
            self.disk = None
        self._count_unsent()
        await self.exporter.shutdown()

    def _stop_delivering(self) -> None:
        """No new retries from now on; a disk queue hands out no more records."""
        if self.delivery is not None:
            self.delivery.stopping.set()
        if self.disk is not None:
            self.disk.stop()

    def _count_unsent(self) -> None:
        """Batches still in the memory queue at the deadline are lost: count and log them."""
        left = self._queue.qsize()
        if not left:
            return
        lost = 0
        while not self._queue.empty():
            lost += self._queue.get_nowait().point_count()
        if self._host is not None:
            self._host.telemetry.exporter_send_failed.labels(self.component_id, "shutdown").inc(
                lost
            )
        log.warning(
            "shutdown deadline passed with batches still queued; they are lost",
            extra={"exporter": self.component_id, "batches": left, "points": lost},
        )

    async def _work(self) -> None:
        assert self.delivery is not None
        deliver = self.delivery.deliver
        while True:
            batch = await self._queue.get()
            try:
                await deliver(self.exporter.export, batch, batch.point_count())
            finally:
                self._queue.task_done()

    async def _work_disk(self) -> None:
        assert self.disk is not None and self.delivery is not None
        disk, deliver = self.disk, self.delivery.deliver
        while (entry := await disk.get()) is not None:
            try:
                await deliver(self.exporter.export, entry.batch, entry.points)
            except LeftOnDisk:
                return
            disk.done(entry)

    async def _work_lanes(self) -> None:
        """The one consumer of a laned exporter: partitions batches in arrival order."""
        assert self.lanes is not None
        submit = self.lanes.submit
        while True:
            batch = await self._queue.get()
            exporter = self.exporter  # per batch: a hot reload may replace it (`replace`)
            assert isinstance(exporter, LanedExporter)
            try:
                await submit(partial(exporter.partition, batch))
            except asyncio.CancelledError:
                raise
            except Exception:
                if self._host is not None:
                    self._host.telemetry.exporter_send_failed.labels(
                        self.component_id, "error"
                    ).inc(batch.point_count())
                log.exception("partitioning a batch failed", extra={"exporter": self.component_id})
            finally:
                self._queue.task_done()


class ExporterConfig(ComponentConfig):
    """Base of every exporter's config: the sending queue and retry settings they all share."""

    sending_queue: QueueSettings = QueueSettings()
    retry_on_failure: RetrySettings = RetrySettings()
