"""Which series are active, which were admitted, and the counts the caps are checked against.

Series live in generations: `admitted` (seen since the last rotation) and `admitted_prev` (seen in
the window before, not since); `refused` and `refused_prev` likewise for refused series. A lookup
that hits `admitted` is the whole steady-state cost; a hit in a `_prev` generation moves the series
forward. Every `window` the generations rotate: `_prev` series (unseen for a whole window) expire,
so a series is forgotten between `window` and 2 x `window` after it was last seen (sliding), or
everything expires at each boundary (fixed). Expired generations are drained a chunk at a time
(`drain`), never per point.

Under memory pressure the memory limiter may make the tracker forget its refused series
(`release`): they are then decided again on their next point, as those past `max_refused` are.

Invariant: a tracked series is in exactly one generation container (current, previous or
expiring), and every count (`admitted_total`, `MetricStats`, per-label counts, label values)
includes exactly the tracked series, expiring ones until drained. Verdicts are sticky: a series
keeps its verdict while it stays active, so totals never jump between a series and the overflow.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum

from metricgate.model import AttributeValue, Resource, Series
from metricgate.model.caches import register

RESOURCE_LABEL = "@resource"
"""Pseudo-label counting distinct resources (pods, instances) of an OTLP metric."""


class Rotation(Enum):
    """What `SeriesTracker.tick` did."""

    NONE = 0
    ROTATED = 1
    """The previous generation expired."""
    IDLE = 2
    """No batch for over a window: everything expired."""


class LabelValues:
    """Series count per value of one label of one metric, exact up to a cap of distinct values."""

    __slots__ = ("untracked", "values")

    def __init__(self) -> None:
        self.values: dict[AttributeValue | Resource, int] = {}
        self.untracked = 0
        """Tracked series whose value did not fit under the cap (distinct count is `>=`)."""


class MetricStats:
    """Active series of one metric name: admitted and refused counts, label values."""

    __slots__ = ("admitted", "labels", "refused")

    def __init__(self) -> None:
        self.admitted = 0
        self.refused = 0
        self.labels: dict[str, LabelValues] = {}


def label_value(series: Series, label: str) -> AttributeValue:
    """The series attribute `label`, else the resource attribute; "" counts as absent."""
    for key, value in series.attributes:
        if key == label:
            return value if value != "" else None
    value = series.metric.resource.get(label)
    return value if value != "" else None


class SeriesTracker:
    """Admission state of one limiter: generations, counts and caps (see module docstring)."""

    def __init__(
        self,
        *,
        max_series: int,
        max_series_per_metric: int,
        per_label: tuple[tuple[str, int], ...],
        window: float,
        fixed: bool,
        max_refused: int,
        max_label_values: int,
        now: float,
        always_refuse: Callable[[Series], bool] | None = None,
    ) -> None:
        self.max_series = max_series
        self.allowance: int | None = None
        """In a `--workers N` set, the series this worker may admit of `max_series` (see
        `leases`); None: `max_series` is counted here alone."""
        self.max_series_per_metric = max_series_per_metric
        self.per_label = per_label
        self.window = window
        self.fixed = fixed
        self.max_refused = max_refused
        self.max_label_values = max_label_values
        self._always_refuse = always_refuse
        self.admitted: set[Series] = set()
        self.admitted_prev: set[Series] = set()
        self.refused: set[Series] = set()
        self.refused_prev: set[Series] = set()
        self._expiring: list[set[Series]] = []
        self._expiring_refused: list[set[Series]] = []
        self.admitted_total = 0
        self.refused_total = 0
        self.metrics: dict[str, MetricStats] = {}
        self.label_counts: tuple[dict[AttributeValue, int], ...] = tuple({} for _ in per_label)
        self.new_refusals: dict[tuple[str, str], int] = {}
        """(metric name, reason) -> series refused since the caller last cleared it."""
        self.next_rotation = now + window
        register(self)  # the memory limiter may make it forget refused series (`release`)

    # -- the time axis ------------------------------------------------------------------------

    def tick(self, now: float) -> Rotation:
        """Rotate generations if a window boundary passed; call with one clock reading per batch."""
        if now < self.next_rotation:
            return Rotation.NONE
        self.drain(-1)
        late = now >= self.next_rotation + self.window
        if self.fixed or late:
            self._expiring = [self.admitted, self.admitted_prev]
            self._expiring_refused = [self.refused, self.refused_prev]
            self.admitted_prev, self.refused_prev = set(), set()
            rotation = Rotation.IDLE if late else Rotation.ROTATED
        else:
            self._expiring = [self.admitted_prev]
            self._expiring_refused = [self.refused_prev]
            self.admitted_prev, self.refused_prev = self.admitted, self.refused
            rotation = Rotation.ROTATED
        self.admitted, self.refused = set(), set()
        if self.fixed:
            periods = (now - self.next_rotation) // self.window + 1
            self.next_rotation += periods * self.window
        else:
            self.next_rotation = now + self.window
        return rotation

    @property
    def draining(self) -> bool:
        return any(self._expiring) or any(self._expiring_refused)

    def drain(self, budget: int) -> int:
        """Forget up to `budget` expired series (all if negative); returns how many."""
        done = 0
        for generations, forget in (
            (self._expiring, self._forget_admitted),
            (self._expiring_refused, self._forget_refused),
        ):
            while generations and done != budget:
                generation = generations[-1]
                if not generation:
                    generations.pop()
                    continue
                forget(generation.pop())
                done += 1
        return done

    def release(self) -> int:
        """Forget every refused series (the memory limiter's call, see `metricgate.model.caches`):
        each is decided again on its next point, as a refused series past `max_refused` always
        is. Admitted series are never forgotten here. Returns how many were forgotten."""
        count = 0
        for generation in (self.refused, self.refused_prev, *self._expiring_refused):
            for series in generation:
                self._forget_refused(series)
            count += len(generation)
            generation.clear()
        return count

    def __len__(self) -> int:
        """Refused series remembered: what `release` would forget."""
        return self.refused_total

    # -- verdicts -----------------------------------------------------------------------------

    def classify(self, series: Series) -> bool:
        """True if `series` (known not to be in `admitted`) passes; decides new series."""
        if series in self.admitted_prev:
            self.admitted_prev.remove(series)
            self.admitted.add(series)
            return True
        if series in self.refused:
            return False
        if series in self.refused_prev:
            self.refused_prev.remove(series)
            self.refused.add(series)
            return False
        if self._expiring or self._expiring_refused:
            self._forget_if_expiring(series)
        return self._decide(series)

    def _forget_if_expiring(self, series: Series) -> None:
        for generation in self._expiring:
            if series in generation:
                generation.remove(series)
                self._forget_admitted(series)
                return
        for generation in self._expiring_refused:
            if series in generation:
                generation.remove(series)
                self._forget_refused(series)
                return

    def _decide(self, series: Series) -> bool:
        name = series.metric.name
        stats = self.metrics.get(name)
        values = [label_value(series, label) for label, _ in self.per_label]
        reason = ""
        if self._always_refuse is not None and self._always_refuse(series):
            reason = "upstream_overflow"
        else:
            for index, (label, cap) in enumerate(self.per_label):
                value = values[index]
                if cap and value is not None and self.label_counts[index].get(value, 0) >= cap:
                    reason = f"per_label:{label}"
                    break
        if not reason and stats is not None and 0 < self.max_series_per_metric <= stats.admitted:
            reason = "max_series_per_metric"
        if not reason and self.max_series > 0:
            cap = self.max_series if self.allowance is None else self.allowance
            if self.admitted_total >= cap:
                reason = "max_series"
        key = (name, reason)
        if reason:
            self.new_refusals[key] = self.new_refusals.get(key, 0) + 1
            if self.refused_total >= self.max_refused:
                return False  # not remembered: decided again on its next point
        return self._remember(series, values, refused=bool(reason))

    def restore(self, series: Series, admitted: bool) -> None:
        """Take back a verdict kept across a restart: counted as if decided now (caps are not
        checked again: verdicts are sticky), in the current generation."""
        if series in self.admitted or series in self.refused:
            return
        if not admitted and self.refused_total >= self.max_refused:
            return
        values = [label_value(series, label) for label, _ in self.per_label]
        self._remember(series, values, refused=not admitted)

    def _remember(self, series: Series, values: list[AttributeValue], refused: bool) -> bool:
        name = series.metric.name
        stats = self.metrics.get(name)
        if stats is None:
            stats = self.metrics[name] = MetricStats()
        self._count_labels(stats, series, 1)
        if refused:
            self.refused.add(series)
            self.refused_total += 1
            stats.refused += 1
            return False
        self.admitted.add(series)
        self.admitted_total += 1
        stats.admitted += 1
        for index, value in enumerate(values):
            if value is not None:
                counts = self.label_counts[index]
                counts[value] = counts.get(value, 0) + 1
        return True

    # -- bookkeeping ----------------------------------------------------------------------------

    def _forget_admitted(self, series: Series) -> None:
        self.admitted_total -= 1
        stats = self.metrics[series.metric.name]
        stats.admitted -= 1
        self._count_labels(stats, series, -1)
        for index, (label, _) in enumerate(self.per_label):
            value = label_value(series, label)
            if value is not None:
                counts = self.label_counts[index]
                left = counts[value] - 1
                if left:
                    counts[value] = left
                else:
                    del counts[value]
        self._release(series.metric.name, stats)

    def _forget_refused(self, series: Series) -> None:
        self.refused_total -= 1
        stats = self.metrics[series.metric.name]
        stats.refused -= 1
        self._count_labels(stats, series, -1)
        self._release(series.metric.name, stats)

    def _release(self, name: str, stats: MetricStats) -> None:
        if not stats.admitted and not stats.refused:
            del self.metrics[name]

    def _count_labels(self, stats: MetricStats, series: Series, delta: int) -> None:
        pairs: list[tuple[str, AttributeValue | Resource]] = list(series.attributes)
        if not series.metric.native_prometheus:
            pairs.append((RESOURCE_LABEL, series.metric.resource))
        cap = self.max_label_values
        labels = stats.labels
        for key, value in pairs:
            entry = labels.get(key)
            if entry is None:
                if delta < 0:
                    continue
                entry = labels[key] = LabelValues()
            values = entry.values
            count = values.get(value)
            if delta > 0:
                if count is not None:
                    values[value] = count + 1
                elif len(values) < cap:
                    values[value] = 1
                else:
                    entry.untracked += 1
                continue
            if count is None:
                entry.untracked = max(0, entry.untracked - 1)
            elif count > 1:
                values[value] = count - 1
            else:
                del values[value]
            if not values and not entry.untracked:
                del labels[key]
