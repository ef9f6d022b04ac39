"""Drop accounting shared by processors: a local tally, mirrored into own telemetry once started.

Invariant: callers add once per batch and reason, never once per point, so own telemetry stays off
the hot path.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client import Counter as PromCounter

    from metricgate.pipeline.host import Host


class DropCounter:
    """Points a processor dropped on purpose, by reason.

    `counts` is always kept (tests and debugging read it); after `bind(host)` every addition also
    increments `metricgate_processor_dropped_points_total{processor, reason}`.
    """

    __slots__ = ("_metric", "component_id", "counts")

    def __init__(self, component_id: str) -> None:
        self.component_id = component_id
        self.counts: Counter[str] = Counter()
        self._metric: PromCounter | None = None

    def bind(self, host: Host) -> None:
        self._metric = host.telemetry.processor_dropped

    def add(self, reason: str, points: int) -> None:
        if points <= 0:
            return
        self.counts[reason] += points
        if self._metric is not None:
            self._metric.labels(self.component_id, reason).inc(points)
