"""Counting what a processor hands on, for the console's points/s per pipeline edge.

`PointMeter` sits between a processor and its next consumer and adds the batch's point count to
`metricgate_processor_outgoing_points_total{processor,pipeline}` before passing the batch on.

Invariant: one counter increment per batch, never per point; the batch is passed on untouched.
"""

from __future__ import annotations

from collections.abc import Callable

from metricgate.model import Batch
from metricgate.pipeline.component import Consumer


class PointMeter:
    """A consumer that counts each batch's points, then hands the batch to `next_consumer`.

    The other edges of the pipeline graph come from counters that exist anyway (receiver accepted,
    exporter sent); what a processor passes on cannot be derived from them (processors drop, fold
    and aggregate), so the service puts one of these after each processor.
    """

    __slots__ = ("_count", "next_consumer")

    def __init__(self, next_consumer: Consumer, count: Callable[[float], None]) -> None:
        self.next_consumer = next_consumer
        self._count = count

    async def consume(self, batch: Batch) -> None:
        self._count(batch.point_count())
        await self.next_consumer.consume(batch)

    def count(self, points: int) -> None:
        """Count points a processor handed on by another way (routing, straight to exporters)."""
        self._count(points)
