"""`Link`: a consumer whose target the service may change while batches flow (hot reload).

Receivers feed each pipeline through its `Link`, which stays the same object for as long as the
pipeline exists; a reload points it at the pipeline's new first processor (or fan-out) in one
assignment, between batches.

Invariant: `consume` reads `target` once, so a batch goes wholly to the old target or wholly to the
new one.
"""

from __future__ import annotations

from metricgate.model import Batch
from metricgate.pipeline.component import Consumer


class Link:
    """Hands each batch to `target`; the service repoints it on reload."""

    __slots__ = ("target",)

    def __init__(self, target: Consumer) -> None:
        self.target = target

    async def consume(self, batch: Batch) -> None:
        await self.target.consume(batch)
