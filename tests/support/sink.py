"""The next consumer of a processor under test: it keeps every batch it gets."""

from __future__ import annotations

from typing import Any

from metricgate.model import Batch


class Sink:
    """Keeps every batch passed on (`batches`)."""

    def __init__(self) -> None:
        self.batches: list[Batch] = []

    async def consume(self, batch: Batch) -> None:
        self.batches.append(batch)

    def points(self) -> list[tuple[Any, ...]]:
        """(first attribute's value, value, start time, time) of every point, in order."""
        return [
            (s.attributes[0][1], g.values[i], g.start_timestamps[i], g.timestamps[i])
            for b in self.batches
            for g in b.metrics
            for i, s in enumerate(g.series)
        ]
