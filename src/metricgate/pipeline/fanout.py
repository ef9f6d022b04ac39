"""Fan-out nodes: one batch to several exporter queues, or to several pipelines.

`ExporterFanOut` checks every queue for room before enqueueing anywhere, so a full queue refuses
the whole batch (the client retries) instead of delivering it to some exporters twice.
"""

from __future__ import annotations

from collections.abc import Sequence

from metricgate.errors import ConsumeError, UnavailableError
from metricgate.model import Batch
from metricgate.pipeline.component import Consumer
from metricgate.pipeline.queue import ExporterQueue


class ExporterFanOut:
    """The end of a pipeline: hands each batch to every exporter queue, all or none."""

    def __init__(self, queues: Sequence[ExporterQueue]) -> None:
        self.queues = list(queues)

    async def consume(self, batch: Batch) -> None:
        for queue in self.queues:
            if not queue.has_room():
                queue.enqueue(batch)  # raises the precise error (full or not accepting)
                raise UnavailableError(f"exporter {queue.component_id} refused the batch")
        for queue in self.queues:
            queue.enqueue(batch)


class PipelineFanOut:
    """A receiver that feeds several pipelines hands each batch to all of them in turn.

    One pipeline refusing does not keep the batch from the others; the first refusal is raised
    afterwards so the client learns of it (a retry may then reach the other pipelines twice, as
    with the Collector's fan-out).
    """

    def __init__(self, consumers: Sequence[Consumer]) -> None:
        self.consumers = list(consumers)

    async def consume(self, batch: Batch) -> None:
        refused: ConsumeError | None = None
        for consumer in self.consumers:
            try:
                await consumer.consume(batch)
            except ConsumeError as exc:
                refused = refused or exc
        if refused is not None:
            raise refused
