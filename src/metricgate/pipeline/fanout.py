"""Fan-out nodes: one batch to several exporter queues, or to several pipelines.

A stalled exporter must not stall its siblings, and a full queue must not lose data silently, so
`ExporterFanOut` enqueues the batch for every exporter that has room and then, if any queue was
full, raises that exporter's retryable error: the client retries and the full exporter gets the
data once it drains. The price, as with the Collector's fan-out, is that the retried request reaches
the exporters that did take it a second time (harmless for cumulative data and gauges; a delta
counted twice). Give slow backends a bigger or persistent queue to keep that rare.
"""

from __future__ import annotations

from collections.abc import Sequence

from metricgate.errors import ConsumeError
from metricgate.model import Batch
from metricgate.pipeline.component import Consumer
from metricgate.pipeline.queue import ExporterQueue


class ExporterFanOut:
    """The end of a pipeline: hands each batch to every exporter queue that has room."""

    def __init__(self, queues: Sequence[ExporterQueue]) -> None:
        self.queues = list(queues)

    async def consume(self, batch: Batch) -> None:
        refused: ConsumeError | None = None
        for queue in self.queues:
            try:
                queue.enqueue(batch)
            except ConsumeError as exc:
                refused = refused or exc
        if refused is not None:
            raise refused


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
