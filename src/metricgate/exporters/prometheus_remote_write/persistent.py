"""Senders of the persistent queue: one per shard log, reading in order, acking after delivery.

Each `PersistentSender` reads records from its `ShardLog` (up to `max_samples_per_send` /
`max_batch_bytes`), joins them into one request and hands it to `Shard.deliver` (the same retry
rules as the in-memory path). Only when that returns (2xx, a permanent 4xx drop, or retries given
up) is the ack offset advanced and persisted. Cancelled mid-request, nothing is acked: the
records are sent again after a restart (at-least-once).

Invariant: one request in flight per shard log, so a series' samples keep their order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from metricgate.exporters.prometheus_remote_write.shards import Shard
from metricgate.pipeline.wal import ShardLog

log = logging.getLogger(__name__)


class PersistentSender:
    """Drains one shard log through one `Shard` (see module docstring)."""

    def __init__(
        self,
        shard_log: ShardLog,
        shard: Shard,
        *,
        max_samples: int,
        max_bytes: int,
        flush_interval: float,
    ) -> None:
        self.log = shard_log
        self.shard = shard
        self.max_samples = max_samples
        self.max_bytes = max_bytes
        self.flush_interval = flush_interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(
            self._run(), name=f"{self.shard.exporter_id}-wal-shard-{self.shard.index}"
        )

    async def stop(self) -> None:
        """Cancel at once: an unacknowledged request stays on disk and is sent after a restart."""
        task, self._task = self._task, None
        while task is not None and not task.done():
            task.cancel()  # again if a cancellation got swallowed (asyncio.wait_for in 3.11)
            await asyncio.wait((task,), timeout=1.0)
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                task.result()

    async def _run(self) -> None:
        while True:
            if not self.log.has_data.is_set():
                await self.log.has_data.wait()
                if self.flush_interval:
                    await asyncio.sleep(self.flush_interval)  # let a request fill up
            records = self.log.read(self.max_samples, self.max_bytes)
            if not records:
                await asyncio.sleep(0.05)  # nothing readable yet: never spin
                continue
            samples = sum(r.samples for r in records)
            try:
                await self.shard.deliver(b"".join(r.payload for r in records), samples)
            except asyncio.CancelledError:
                raise
            except Exception:
                # A bug must not wedge the shard forever on the same records.
                self.shard.metrics.failed.labels(self.shard.exporter_id, "error").inc(samples)
                log.exception(
                    "remote-write shard failed a request", extra={"shard": self.shard.index}
                )
            try:
                self.log.ack(records[-1].end)
            except OSError:
                log.exception(
                    "remote-write queue: could not persist the ack offset",
                    extra={"shard": self.shard.index},
                )
