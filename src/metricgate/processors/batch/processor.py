"""The `batch` processor: gather incoming batches and forward fewer, larger ones.

Batches are buffered until `send_batch_size` points are waiting or `timeout` has passed since the
first of them arrived; the buffer is then merged (one group per metric) and forwarded, cut into
pieces of at most `send_batch_max_size` points when that is set. `timeout: 0` forwards every batch
at once (only cutting it to `send_batch_max_size`). Shutdown flushes what is buffered.

Like the Collector's batch processor, `consume()` returns as soon as the data is buffered, so the
sender is told "accepted" before the data moves on: errors raised downstream afterwards (a full
exporter queue, say) cannot reach the sender; they are logged and the points counted as dropped
(`reason="send_failed"`). That gives up back-pressure, and exporters already batch in their own
sending queues, so use this processor only where larger batches pay (ahead of per-batch costly
processors) and prefer none at all in front of exporters. Some back-pressure remains: the call
that fills the buffer sends it itself, so producers wait while a full buffer goes out.

Invariant: input batches are never changed; a group that needs no merging is forwarded as the
same object.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from pydantic import Field, model_validator

from metricgate.config.types import ComponentConfig, Duration
from metricgate.model import Batch
from metricgate.model.grouping import merge_groups, split_groups
from metricgate.pipeline.component import Consumer, Processor
from metricgate.pipeline.host import Host
from metricgate.pipeline.registry import processor_factory
from metricgate.processing.drops import DropCounter

log = logging.getLogger(__name__)


class BatchConfig(ComponentConfig):
    """`processors.batch` (the Collector's keys; sizes count data points)."""

    send_batch_size: int = Field(default=8192, ge=0)
    """Send once this many points are buffered; 0: only `timeout` triggers a send."""
    timeout: Duration = 0.2
    """Send at most this long after the first buffered point; 0 sends every batch at once."""
    send_batch_max_size: int = Field(default=0, ge=0)
    """Largest batch sent, in points; bigger ones are cut. 0: no limit."""

    @model_validator(mode="after")
    def _check(self) -> BatchConfig:
        if self.send_batch_max_size and self.send_batch_max_size < self.send_batch_size:
            raise ValueError(
                f"expected send_batch_max_size >= send_batch_size, got "
                f"{self.send_batch_max_size} < {self.send_batch_size}"
            )
        return self


class BatchProcessor(Processor):
    """Buffers batches and forwards them merged (see module docstring)."""

    def __init__(self, component_id: str, config: BatchConfig, next_consumer: Consumer) -> None:
        super().__init__(component_id, next_consumer)
        self.config = config
        self._pending: list[Batch] = []
        self._pending_points = 0
        self._deadline = 0.0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopped = False
        self.dropped = DropCounter(component_id)

    @property
    def buffered_points(self) -> int:
        return self._pending_points

    async def start(self, host: Host) -> None:
        self.dropped.bind(host)
        buffered = host.telemetry.gauge(
            "metricgate_processor_buffered_points",
            "Data points a batch processor holds, waiting to be sent.",
            ["processor"],
        )
        self.observe(buffered, lambda: {(self.component_id,): float(self._pending_points)})
        if self.config.timeout > 0 and self._task is None:
            self._task = asyncio.create_task(self._run_timer(), name=f"{self.component_id}-timer")

    async def shutdown(self) -> None:
        self._stopped = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()

    async def consume(self, batch: Batch) -> None:
        points = batch.point_count()
        if not points:
            return
        if self.config.timeout <= 0 or self._stopped:
            # nothing is buffered, so downstream errors still reach the sender
            for chunk in split_groups(batch.metrics, self.config.send_batch_max_size):
                await self.next_consumer.consume(batch if chunk is batch.metrics else Batch(chunk))
            return
        if not self._pending:
            self._deadline = asyncio.get_running_loop().time() + self.config.timeout
            self._wake.set()
        self._pending.append(batch)
        self._pending_points += points
        if self.config.send_batch_size and self._pending_points >= self.config.send_batch_size:
            await self.flush()

    async def flush(self) -> None:
        """Send everything buffered now; downstream errors are logged and counted."""
        if not self._pending:
            return
        pending, self._pending, self._pending_points = self._pending, [], 0
        groups = (
            pending[0].metrics
            if len(pending) == 1
            else merge_groups(g for b in pending for g in b.metrics)
        )
        for chunk in split_groups(groups, self.config.send_batch_max_size):
            out = pending[0] if len(pending) == 1 and chunk is groups else Batch(chunk)
            try:
                await self.next_consumer.consume(out)
            except Exception as exc:
                lost = out.point_count()
                self.dropped.add("send_failed", lost)
                log.warning(
                    "batch processor could not hand on buffered points",
                    extra={"processor": self.component_id, "points": lost, "error": repr(exc)},
                )

    async def _run_timer(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                delay = self._deadline - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                else:
                    await self.flush()


FACTORY = processor_factory(
    "batch", BatchConfig, BatchProcessor, "merges batches by size or timeout"
)
