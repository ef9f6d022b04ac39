"""Rates from own-telemetry counters: the points/s and the health the console shows.

`RateSampler` reads a fixed set of counter families every `interval` seconds (1 s by default)
into a ring of snapshots spanning `window` seconds (10 s), and answers a counter's rate over that
window and the last time it rose. Each `CounterSource` sums one or more families by some of
their labels: `exporter_trouble` is retries + points given up + points refused by a full queue,
keyed by exporter.

Invariant: bounded and off the data path. The ring holds at most `window / interval + 1`
snapshots; each snapshot and the last-rise table hold one entry per counter series of the chosen
families, whose number the components bound. Counters are only read (their `collect()`), at the
sampler's pace, never per batch.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from prometheus_client import Counter

Key = tuple[str, ...]
_Slot = tuple[str, Key]


@dataclass(frozen=True)
class CounterSource:
    """One rate the console needs: counter families summed and keyed by some of their labels."""

    name: str
    counters: tuple[Counter, ...]
    labels: tuple[str, ...]


class RateSampler:
    """Periodic snapshots of `sources` (see the module docstring)."""

    def __init__(
        self,
        sources: Sequence[CounterSource],
        interval: float = 1.0,
        window: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sources = list(sources)
        self.interval = interval
        self.window = window
        self.clock = clock
        self._ring: deque[tuple[float, dict[_Slot, float]]] = deque(
            maxlen=max(2, math.ceil(window / interval) + 1)
        )
        self._rose: dict[_Slot, float] = {}

    def sample(self) -> None:
        """Take one snapshot now; note which counters rose since the previous one."""
        now = self.clock()
        values = self._read()
        if self._ring:
            previous = self._ring[-1][1]
            for slot, value in values.items():
                if value > previous.get(slot, 0.0):
                    self._rose[slot] = now
        self._ring.append((now, values))

    def rate(self, name: str, key: Key) -> float:
        """Per-second increase of source `name` at `key` over the window (0 before two samples)."""
        if len(self._ring) < 2:
            return 0.0
        (start, old), (end, new) = self._ring[0], self._ring[-1]
        slot = (name, key)
        if end <= start:
            return 0.0
        return max(0.0, new.get(slot, 0.0) - old.get(slot, 0.0)) / (end - start)

    def last_rise(self, name: str, key: Key) -> float | None:
        """When (on `clock`) source `name` at `key` last rose between two samples, if ever."""
        return self._rose.get((name, key))

    @property
    def span(self) -> float:
        """Seconds the current rates are measured over (0 before two samples)."""
        if len(self._ring) < 2:
            return 0.0
        return self._ring[-1][0] - self._ring[0][0]

    async def run(self) -> None:
        """Sample every `interval` seconds until cancelled."""
        while True:
            self.sample()
            await asyncio.sleep(self.interval)

    def _read(self) -> dict[_Slot, float]:
        values: dict[_Slot, float] = {}
        for source in self.sources:
            for counter in source.counters:
                for family in counter.collect():
                    for sample in family.samples:
                        if not sample.name.endswith("_total"):
                            continue
                        key = tuple(sample.labels.get(label, "") for label in source.labels)
                        slot = (source.name, key)
                        values[slot] = values.get(slot, 0.0) + sample.value
        return values
