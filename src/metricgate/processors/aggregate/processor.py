"""The `aggregate` processor: vmagent-style stream aggregation (recording rules on the stream).

Each input series is matched once against every rule, on its Prometheus view (the family name and
label set the Prometheus exporters would give it: `PrometheusTranslator`'s, or the series itself
when it is `native_prometheus`). The verdict (the rule's `Input` state when one rule matched, else
a `_Route`: which rules' states to update and whether to forward the point) is cached on the
interned `Series`, so the steady state is one dict lookup plus the per-rule update.

Matched points are dropped from the forwarded batch unless every rule that matched them says
`keep_input: true`; unmatched points always pass. Exponential histograms and summaries are never
aggregated (they pass through). The forwarded part is handed on *before* the rules see the batch:
if the next consumer refuses it, the client will send the batch again, and aggregating only
accepted batches keeps gauges and deltas from being counted twice.

A timer task flushes each rule at the end of its aligned window (a batch arriving after a window
end flushes it first, so a late timer never mixes windows). Outputs go to the next consumer as one
batch per flush; if it refuses them they are counted as dropped (`flush_failed`).

A hot reload that changes the rules hands the windows of the unchanged ones to the rebuilt
processor (`adopt`; this module keeps the data path, the flushing and that handover together,
hence its length).

Invariant: the route cache only points at `Input`s their rules still hold: whenever a rule forgets
an input (staleness), its series' route is forgotten too and rebuilt on the next sample.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from metricgate.errors import ConsumeError
from metricgate.model import (
    FLAG_NO_RECORDED_VALUE,
    Batch,
    Metric,
    MetricKind,
    MetricPoints,
    Series,
    Temporality,
)
from metricgate.pipeline.component import Component, Consumer, Processor
from metricgate.pipeline.registry import processor_factory
from metricgate.pipeline.snapshots import StateSnapshot
from metricgate.processors.aggregate import rule as modes
from metricgate.processors.aggregate import snapshot
from metricgate.processors.aggregate.config import AggregateConfig
from metricgate.processors.aggregate.emit import Emitter, RuleEmitter, take_unchanged
from metricgate.processors.aggregate.rule import Rule
from metricgate.processors.aggregate.state import Input
from metricgate.translate.series import Dropped, PrometheusTranslator, attribute_text

if TYPE_CHECKING:
    from metricgate.pipeline.host import Host
    from metricgate.telemetry.metrics import Counter, SelfMetrics

log = logging.getLogger(__name__)

MAX_ROUTES: Final = 2_000_000
"""Past this many cached routes (matched or not), the cache starts over; rule state is kept."""


def _next_window_end(rules: list[Rule]) -> int:
    """When the first of `rules` closes its window (never, without rules)."""
    return min((rule.window_end for rule in rules), default=2**63)


class _Route:
    """Which rule states a series updates, and whether its points are forwarded."""

    __slots__ = ("inputs", "keep")

    def __init__(self, keep: bool, inputs: tuple[Input, ...]) -> None:
        self.keep = keep
        self.inputs = inputs


_UNMATCHED: Final = _Route(True, ())


def input_mode(metric: Metric) -> int | None:
    """How a metric's values become deltas (see `rule`), or None when it is not aggregated."""
    kind, temporality = metric.kind, metric.temporality
    if kind is MetricKind.GAUGE:
        return modes.COUNTER
    if kind is MetricKind.SUM:
        if temporality is Temporality.CUMULATIVE:
            return modes.COUNTER if metric.monotonic else modes.UPDOWN
        if temporality is Temporality.DELTA:
            return modes.DELTA if metric.monotonic else modes.DELTA_UPDOWN
    if kind is MetricKind.HISTOGRAM:
        if temporality is Temporality.CUMULATIVE:
            return modes.HISTOGRAM
        if temporality is Temporality.DELTA:
            return modes.HISTOGRAM_DELTA
    return None


class _Instruments:
    """The processor's own metrics (every aggregate processor of a gateway shares the families)."""

    def __init__(self, telemetry: SelfMetrics) -> None:
        self.matched: Counter = telemetry.counter(
            "metricgate_processor_aggregate_matched_points",
            "Data points an aggregation rule matched and aggregated.",
            ["processor", "rule"],
        )
        self.late: Counter = telemetry.counter(
            "metricgate_processor_aggregate_late_points",
            "Matched points older than the open window, aggregated into it anyway.",
            ["processor", "rule"],
        )
        self.slots = telemetry.gauge(
            "metricgate_processor_aggregate_slots",
            "Aggregation slots (output label sets) an aggregation rule holds.",
            ["processor", "rule"],
        )
        self.input_series = telemetry.gauge(
            "metricgate_processor_aggregate_input_series",
            "Input series whose state an aggregation rule holds.",
            ["processor", "rule"],
        )


class AggregateProcessor(Processor):
    """Aggregates matching series into per-interval outputs (see the module docstring)."""

    def __init__(
        self,
        component_id: str,
        config: AggregateConfig,
        next_consumer: Consumer,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(component_id, next_consumer)
        self.config = config
        self._clock = clock
        now_ns = self._now_ns()
        self.rules = [Rule(rule, index, now_ns) for index, rule in enumerate(config.rules)]
        self._emitters = [RuleEmitter(rule) for rule in self.rules]
        self._routes: dict[Series, Input | _Route] = {}
        self._translator = PrometheusTranslator()
        self._next_flush = min(rule.window_end for rule in self.rules)
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._generation = 0
        """Bumped whenever a flush forgets inputs (routes resolved before it may be stale)."""
        self._telemetry: SelfMetrics | None = None
        self._instruments: _Instruments | None = None
        self._handed_over: tuple[list[Rule], list[RuleEmitter]] | None = None
        """All rules before a reload took some (`adopt`), to take them back if it fails."""

    def _now_ns(self) -> int:
        return int(self._clock() * 1e9)

    # -- state across restarts (`metricgate.pipeline.snapshots`, `snapshot.py`) -------------------

    snapshot_version = 1

    def snapshot_state(self) -> StateSnapshot:
        """Slots, totals and input baselines of every rule (see `snapshot.py`)."""
        return snapshot.snapshot(self.rules)

    def restore_state(self, state: StateSnapshot) -> None:
        snapshot.restore(self.rules, state)

    # -- lifecycle ---------------------------------------------------------------------------

    def adopt(self, previous: Component) -> bool:
        """Hot reload: take over the open window and inputs of every rule whose config did not
        change; `previous` stops its timer and keeps the others, to flush at its shutdown. A
        running processor adopting its successor takes its rules back (a failed reload)."""
        if not isinstance(previous, AggregateProcessor):
            return False
        if self._handed_over is not None:
            self.rules, self._emitters = self._handed_over
            self._handed_over = None
            self._next_flush = _next_window_end(self.rules)
            if previous._task is not None:
                previous._task.cancel()
            self._task = asyncio.create_task(self._run(), name=f"{self.component_id} flush")
            return True
        pairs = list(zip(previous.rules, previous._emitters, strict=True))
        free = take_unchanged(self.rules, self._emitters, pairs)
        if len(free) == len(pairs):
            return False
        self._next_flush = _next_window_end(self.rules)
        # Batches still inside `previous` update the shared inputs through its route cache.
        previous._handed_over = (previous.rules, previous._emitters)
        previous.rules, previous._emitters = [r for r, _ in free], [e for _, e in free]
        previous._next_flush = _next_window_end(previous.rules)
        if previous._task is not None:
            previous._task.cancel()
        return True

    async def start(self, host: Host) -> None:
        telemetry = self._telemetry = host.telemetry
        instruments = self._instruments = _Instruments(telemetry)
        pid, rules = self.component_id, self.rules
        self.observe(
            instruments.slots, lambda: {(pid, r.label): float(len(r.groups)) for r in rules}
        )
        self.observe(
            instruments.input_series, lambda: {(pid, r.label): float(len(r.inputs)) for r in rules}
        )
        self._task = asyncio.create_task(self._run(), name=f"{self.component_id} flush")

    async def shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        now_ns = self._now_ns()
        await self.flush(now_ns / 1e9)
        out = Emitter()
        for rule, emitter in zip(self.rules, self._emitters, strict=True):
            if rule.config.flush_on_shutdown:
                emitter.emit(out, now_ns)
        await self._send(out)

    async def _run(self) -> None:
        while True:
            delay = self._next_flush / 1e9 - self._clock()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                await self.flush()
            except Exception:
                log.exception("aggregation flush failed", extra={"processor": self.component_id})

    # -- flushing ----------------------------------------------------------------------------

    async def flush(self, now: float | None = None) -> None:
        """Close every rule window that ended by `now` (default: the clock) and send outputs."""
        now_ns = self._now_ns() if now is None else int(now * 1e9)
        out = Emitter()
        for rule, emitter in zip(self.rules, self._emitters, strict=True):
            if now_ns < rule.window_end:
                continue
            if rule.config.flush_on_shutdown or not rule.first_window:
                emitter.emit(out, rule.window_end)
            rule.first_window = False
            gone = rule.expire(now_ns)
            if gone:
                self._generation += 1
                for series in gone:
                    self._routes.pop(series, None)
            rule.win = now_ns // rule.interval_ns * rule.interval_ns
        self._next_flush = _next_window_end(self.rules)
        await self._send(out)

    async def _send(self, out: Emitter) -> None:
        batch = out.batch()
        if not batch:
            return
        try:
            await self.next_consumer.consume(batch)
        except ConsumeError as exc:
            if self._telemetry is not None:
                self._telemetry.processor_dropped.labels(self.component_id, "flush_failed").inc(
                    batch.point_count()
                )
            log.warning(
                "aggregation outputs refused downstream",
                extra={"processor": self.component_id, "error": repr(exc)},
            )

    # -- data path ---------------------------------------------------------------------------

    async def consume(self, batch: Batch) -> None:
        """Forward what no rule takes, then aggregate what the rules take.

        Aggregating only after the next consumer accepted the forwarded part keeps a refused
        batch (which the client will send again) from being counted twice.
        """
        if self._closed:
            await self.next_consumer.consume(batch)
            return
        now_ns = self._now_ns()
        if now_ns >= self._next_flush:
            await self.flush(now_ns / 1e9)
        forwarded: list[MetricPoints] = []
        plans: list[tuple[MetricPoints, int, list[Input | _Route | None]]] = []
        changed = False
        for points in batch.metrics:
            mode = input_mode(points.metric)
            if mode is None:
                forwarded.append(points)
                continue
            routes, kept = self._resolve(points, mode)
            if len(kept) == len(routes):
                forwarded.append(points)
            else:
                changed = True
                if kept:
                    forwarded.append(points.select(kept))
            if any(routes):
                plans.append((points, mode, routes))
        if forwarded:
            generation = self._generation
            await self.next_consumer.consume(Batch(forwarded) if changed else batch)
            now_ns = self._now_ns()
            if now_ns >= self._next_flush:
                await self.flush(now_ns / 1e9)
            if generation != self._generation:  # a flush forgot inputs meanwhile: re-resolve
                plans = [(p, m, self._resolve(p, m)[0]) for p, m, _ in plans]
        for rule in self.rules:
            rule.begin(now_ns)
        for points, mode, routes in plans:
            self._apply(points, mode, routes)
        self._report()

    def _resolve(
        self, points: MetricPoints, mode: int
    ) -> tuple[list[Input | _Route | None], list[int]]:
        """Each point's route (None: unmatched), and the indexes of the points to forward."""
        cache = self._routes
        routes: list[Input | _Route | None] = []
        kept: list[int] = []
        for i, series in enumerate(points.series):
            route = cache.get(series)
            if route is None:
                route = self._route(series, mode)
            if route is _UNMATCHED:
                routes.append(None)
                kept.append(i)
                continue
            routes.append(route)
            if route.rule.keep_input if isinstance(route, Input) else route.keep:
                kept.append(i)
        return routes, kept

    def _apply(self, points: MetricPoints, mode: int, routes: list[Input | _Route | None]) -> None:
        """Feed one metric's points to the rules that matched them."""
        values: list[Any] = points.values
        timestamps, starts = points.timestamps, points.start_timestamps
        add = Rule.add_number
        if mode >= modes.HISTOGRAM:
            add = Rule.add_histogram  # type: ignore[assignment]
            if any(points.flags):  # no recorded value: nothing to merge (numbers carry NaN)
                flags = zip(values, points.flags, strict=True)
                values = [None if f & FLAG_NO_RECORDED_VALUE else v for v, f in flags]
        for i, route in enumerate(routes):
            if route is None:
                continue
            if isinstance(route, Input):  # the common case: one rule matched
                add(route.rule, route, values[i], timestamps[i], starts[i], mode)
            else:
                for inp in route.inputs:
                    add(inp.rule, inp, values[i], timestamps[i], starts[i], mode)

    def _route(self, series: Series, mode: int) -> Input | _Route:
        """Match a series not seen before (or forgotten) against every rule; cache the verdict.

        A series matched by exactly one rule is routed to its `Input` directly (no `_Route`).
        """
        if len(self._routes) >= MAX_ROUTES:
            self._routes.clear()
        route: Input | _Route = _UNMATCHED
        view = self._view(series)
        if view is not None:
            name, labels = view
            label_map = dict(labels)
            label_map["__name__"] = name
            inputs = []
            keep = True
            for rule in self.rules:
                if not rule.accepts(mode) or not rule.matches(label_map):
                    continue
                found = rule.inputs.get(series)
                inputs.append(found or rule.new_input(series, name, labels, mode))
                keep = keep and rule.config.keep_input
            if len(inputs) == 1:
                route = inputs[0]
            elif inputs:
                route = _Route(keep, tuple(inputs))
        self._routes[series] = route
        return route

    def _view(self, series: Series) -> tuple[str, tuple[tuple[str, str], ...]] | None:
        """The series' Prometheus family name and sorted labels, or None if it has none."""
        if series.metric.native_prometheus:
            attributes = series.attributes
            if all(type(v) is str and v for _, v in attributes):
                return series.metric.name, attributes  # type: ignore[return-value]
            labels = tuple(
                (k, v if isinstance(v, str) else attribute_text(v))
                for k, v in attributes
                if v not in ("", None)
            )
            return series.metric.name, labels
        view = self._translator.build_series(series)
        if isinstance(view, Dropped):
            return None
        return view.family.name, view.labels

    def _report(self) -> None:
        instruments, telemetry = self._instruments, self._telemetry
        for rule in self.rules:
            matched, late, too_old, out_of_order, mismatched = rule.take_tallies()
            if instruments is None or telemetry is None:
                continue
            pid = self.component_id
            if matched:
                instruments.matched.labels(pid, rule.label).inc(matched)
            if late:
                instruments.late.labels(pid, rule.label).inc(late)
            for reason, count in (
                ("too_old", too_old),
                ("out_of_order", out_of_order),
                ("bounds_mismatch", mismatched),
            ):
                if count:
                    telemetry.processor_dropped.labels(pid, reason).inc(count)


FACTORY = processor_factory(
    "aggregate",
    AggregateConfig,
    AggregateProcessor,
    "stream aggregation into per-interval outputs (vmagent-compatible rules)",
)
