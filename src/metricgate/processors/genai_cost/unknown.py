"""Accounting for token points the `genai_cost` processor could not price (model not in table).

Each batch's unpriced points are added to `metricgate_genai_cost_unknown_model_points_total
{processor, provider, model}` and, at most once per `log_interval`, one warning lists the models
seen since the last one.

Invariant: the number of distinct (provider, model) label pairs is capped (`MAX_PAIRS`); pairs
beyond it are counted under model `other`, so untrusted model names cannot blow up own telemetry.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Final

from metricgate.pipeline.host import Host
from metricgate.telemetry.metrics import Counter as PromCounter

log = logging.getLogger("metricgate.processors.genai_cost")

MAX_PAIRS: Final = 1000
OVERFLOW_MODEL: Final = "other"


class UnknownModels:
    """Counts unpriced points per (provider, model); see module docstring."""

    def __init__(
        self,
        component_id: str,
        log_interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.component_id = component_id
        self.log_interval = log_interval
        self.clock = clock
        self.counts: Counter[tuple[str, str]] = Counter()
        """Every unpriced point so far, by (provider, model) (tests and debugging read it)."""
        self._pending: Counter[tuple[str, str]] = Counter()
        self._last_log: float | None = None
        self._metric: PromCounter | None = None

    def bind(self, host: Host) -> None:
        self._metric = host.telemetry.counter(
            "metricgate_genai_cost_unknown_model_points",
            "Token data points genai_cost could not price: their model is not in the price table.",
            ["processor", "provider", "model"],
        )

    def add(self, found: Counter[tuple[str, str]]) -> None:
        """Record one batch's unpriced points."""
        for pair, points in found.items():
            if pair not in self.counts and len(self.counts) >= MAX_PAIRS:
                pair = (pair[0], OVERFLOW_MODEL)
            self.counts[pair] += points
            self._pending[pair] += points
            if self._metric is not None:
                self._metric.labels(self.component_id, *pair).inc(points)
        self._maybe_log()

    def _maybe_log(self) -> None:
        if not self._pending or self.log_interval <= 0:
            return
        now = self.clock()
        if self._last_log is not None and now - self._last_log < self.log_interval:
            return
        self._last_log = now
        listed = ", ".join(
            f"{provider}/{model} ({points} points)"
            for (provider, model), points in self._pending.most_common(20)
        )
        log.warning(
            "no price for these models, their tokens are not costed: %s; "
            "add them under prices or prices_file",
            listed,
            extra={"processor": self.component_id},
        )
        self._pending.clear()
