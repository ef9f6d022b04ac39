"""The sending core every exporter sits behind: a bounded queue, workers, retries, telemetry.

`ExporterQueue.consume` never waits: it enqueues or raises `QueueFullError`, which the receiver
turns into a retryable answer for its client. Workers call the exporter's `export()`; a
`RetryableError` (or any unexpected exception from a network exporter) is retried with exponential
backoff and jitter until `max_elapsed_time`; a `PermanentError` drops the batch, counted and logged.

With `sending_queue.storage` the queue is on disk instead (`persistent_queue.py`): `enqueue`
writes the batch through to a write-ahead log, workers read it back in order and acknowledge it
once delivered or given up on; shutdown leaves what is undelivered on disk for the next start.

Invariant: a batch is counted exactly once, as sent, send-failed, or enqueue-failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from metricgate.config.types import ComponentConfig, Duration
from metricgate.errors import PermanentError, QueueFullError, RetryableError, UnavailableError
from metricgate.model import Batch
from metricgate.pipeline.component import Exporter
from metricgate.pipeline.host import Host
from metricgate.pipeline.persistent_queue import (
    LeftOnDisk,
    PersistentQueue,
    StorageSettings,
    UnencodableBatch,
    open_for_exporter,
)

log = logging.getLogger(__name__)


class QueueSettings(BaseModel):
    """`sending_queue`: how many batches may wait for an exporter, and how many workers send."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    queue_size: int = Field(default=1000, ge=1)
    num_consumers: int = Field(default=10, ge=1)
    storage: StorageSettings | None = None
    """Keep the queue on disk (see `StorageSettings`); unset = in memory, bounded by queue_size."""


class RetrySettings(BaseModel):
    """`retry_on_failure`: backoff between attempts after a retryable error."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    initial_interval: Duration = 5.0
    max_interval: Duration = 30.0
    max_elapsed_time: Duration = 300.0
    """Give up after this long; 0 retries forever."""
    multiplier: float = Field(default=1.5, ge=1.0)
    randomization_factor: float = Field(default=0.5, ge=0.0, le=1.0)


@runtime_checkable
class DurableExporter(Protocol):
    """An exporter with its own on-disk queue: `enqueue` hands batches to `append` instead.

    `append` runs synchronously before the receiver answers, so a batch the client was told is
    accepted is already in the exporter's durable queue; it raises `QueueFullError` (or another
    `ConsumeError`) to refuse.
    """

    @property
    def durable(self) -> bool: ...

    def append(self, batch: Batch) -> None: ...


class ExporterQueue:
    """Bounded queue + workers in front of one exporter (see module docstring)."""

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
        self._stopping = asyncio.Event()
        self._host: Host | None = None
        self._durable = isinstance(exporter, DurableExporter) and exporter.durable
        self.disk: PersistentQueue | None = None
        """The on-disk queue while running with `sending_queue.storage`."""

    @property
    def component_id(self) -> str:
        return self.exporter.component_id

    @property
    def size(self) -> int:
        """Batches waiting (or in flight, on disk)."""
        return self.disk.pending_records if self.disk is not None else self._queue.qsize()

    @property
    def capacity(self) -> int:
        return self.settings.queue_size

    def has_room(self) -> bool:
        if self.disk is not None:
            return self._accepting and self.disk.has_room()
        return self._accepting and not self._queue.full()

    async def start(self, host: Host) -> None:
        self._host = host
        await self.exporter.start(host)
        storage = self.settings.storage
        if storage is not None and not self._durable:
            try:
                self.disk = open_for_exporter(storage, self.component_id, host.telemetry)
            except BaseException:
                await self.exporter.shutdown()
                raise
        work = self._work if self.disk is None else self._work_disk
        self._accepting = True
        self._workers = [
            asyncio.create_task(work(), name=f"{self.component_id}-worker-{i}")
            for i in range(self.settings.num_consumers)
        ]

    async def consume(self, batch: Batch) -> None:
        self.enqueue(batch)

    def enqueue(self, batch: Batch) -> None:
        """Queue `batch` without waiting, or raise a retryable error."""
        if not self._accepting:
            raise UnavailableError(f"exporter {self.component_id} is not accepting data")
        if self._durable:
            assert isinstance(self.exporter, DurableExporter)
            self._append(self.exporter.append, batch)
            return
        if self.disk is not None:
            self._append(self.disk.append, batch)
            return
        try:
            self._queue.put_nowait(batch)
        except asyncio.QueueFull:
            if self._host is not None:
                self._host.telemetry.exporter_enqueue_failed.labels(self.component_id).inc(
                    batch.point_count()
                )
            raise QueueFullError(
                f"sending queue of exporter {self.component_id} is full ({self.capacity} batches)",
                retry_after=1.0,
            ) from None

    def _append(self, append: Callable[[Batch], None], batch: Batch) -> None:
        try:
            append(batch)
        except QueueFullError:
            if self._host is not None:
                self._host.telemetry.exporter_enqueue_failed.labels(self.component_id).inc(
                    batch.point_count()
                )
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
        """Stop accepting, drain what is queued until `deadline` (monotonic), then stop."""
        if self.disk is not None:
            await self._shutdown_disk(self.disk, deadline)
            await self.exporter.shutdown()
            return
        self._accepting = False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), max(0.0, deadline - time.monotonic()))
        self._stopping.set()
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []
        left = self._queue.qsize()
        if left and self._host is not None:
            lost = 0
            while not self._queue.empty():
                lost += self._queue.get_nowait().point_count()
            self._host.telemetry.exporter_send_failed.labels(self.component_id, "shutdown").inc(
                lost
            )
            log.warning(
                "shutdown deadline passed with batches still queued; they are lost",
                extra={"exporter": self.component_id, "batches": left, "points": lost},
            )
        await self.exporter.shutdown()

    async def _shutdown_disk(self, disk: PersistentQueue, deadline: float) -> None:
        """Finish the exports in flight until `deadline`; the rest stays on disk."""
        self._accepting = False
        self._stopping.set()
        disk.stop()
        if self._workers:
            _, late = await asyncio.wait(
                self._workers, timeout=max(0.0, deadline - time.monotonic())
            )
            for worker in late:
                worker.cancel()
            await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []
        await disk.close()
        self.disk = None

    async def _work_disk(self) -> None:
        assert self.disk is not None
        disk = self.disk
        while (entry := await disk.get()) is not None:
            try:
                await self._deliver(entry.batch)
            except LeftOnDisk:
                return
            disk.done(entry)

    async def _work(self) -> None:
        while True:
            batch = await self._queue.get()
            try:
                await self._deliver(batch)
            except asyncio.CancelledError:
                if self._host is not None:
                    self._host.telemetry.exporter_send_failed.labels(
                        self.component_id, "shutdown"
                    ).inc(batch.point_count())
                raise
            finally:
                self._queue.task_done()

    async def _deliver(self, batch: Batch) -> None:
        assert self._host is not None
        telemetry = self._host.telemetry
        points = batch.point_count()
        started = time.monotonic()
        interval = self.retry.initial_interval
        while True:
            try:
                await self.exporter.export(batch)
            except asyncio.CancelledError:
                raise
            except PermanentError as exc:
                telemetry.exporter_send_failed.labels(self.component_id, "permanent").inc(points)
                log.error(
                    "export failed permanently; batch dropped",
                    extra={"exporter": self.component_id, "points": points, "error": str(exc)},
                )
                return
            except Exception as exc:
                wait = self._next_wait(exc, interval, started)
                if wait is None and self.disk is not None and self._stopping.is_set():
                    raise LeftOnDisk from exc
                if wait is None:
                    telemetry.exporter_send_failed.labels(
                        self.component_id, "retries_exhausted"
                    ).inc(points)
                    log.error(
                        "export failed; giving up",
                        extra={"exporter": self.component_id, "points": points, "error": str(exc)},
                    )
                    return
                telemetry.exporter_retries.labels(self.component_id).inc()
                log.warning(
                    "export failed; will retry",
                    extra={
                        "exporter": self.component_id,
                        "retry_in_s": round(wait, 3),
                        "error": str(exc),
                    },
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), wait)
                interval = min(interval * self.retry.multiplier, self.retry.max_interval)
                continue
            telemetry.exporter_sent.labels(self.component_id).inc(points)
            return

    def _next_wait(self, exc: Exception, interval: float, started: float) -> float | None:
        """Seconds to wait before the next attempt, or None to give up."""
        if not self.retry.enabled or self._stopping.is_set():
            return None
        jitter = self.retry.randomization_factor
        wait = interval * random.uniform(1 - jitter, 1 + jitter)
        if isinstance(exc, RetryableError) and exc.retry_after > wait:
            wait = exc.retry_after
        limit = self.retry.max_elapsed_time
        if limit and time.monotonic() - started + wait > limit:
            return None
        return wait


class ExporterConfig(ComponentConfig):
    """Base of every exporter's config: the sending queue and retry settings they all share."""

    sending_queue: QueueSettings = QueueSettings()
    retry_on_failure: RetrySettings = RetrySettings()
