"""The `cardinality_limit` processor: the component around the budgets (`SeriesTracker` and
`Folder` per tenant, `budgets.py`).

Per batch: one clock reading; per metric group, its resource's budget (one dict lookup; a budget
seen first in this batch rotates its generations if a window boundary passed), then one C-level
pass that finds the series not in the budget's current admitted generation. A group whose series
are all admitted is handed on untouched (no copy); otherwise the missing series are classified
once each, refused points are folded or dropped, and a new group is built.

Invariant: the processor never mutates a batch it was given (batches are shared between pipelines);
a series is only ever counted in the budget of its resource's tenant; self-telemetry is updated
once per batch, never per point.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from itertools import filterfalse

from metricgate.errors import UnavailableError
from metricgate.model import Batch, MetricPoints
from metricgate.pipeline.component import Component, Consumer, Processor
from metricgate.pipeline.host import Host
from metricgate.pipeline.registry import processor_factory
from metricgate.pipeline.snapshots import SnapshotPoints, StateSnapshot, empty_value
from metricgate.pipeline.snapshots import points as snapshot_points
from metricgate.processors.cardinality_limit import leases, offenders
from metricgate.processors.cardinality_limit.budgets import Budget, Budgets
from metricgate.processors.cardinality_limit.config import CardinalityLimitConfig
from metricgate.processors.cardinality_limit.fold import Folder, is_overflow_series
from metricgate.processors.cardinality_limit.tracker import Rotation, SeriesTracker
from metricgate.telemetry.metrics import SelfMetrics

DROP_REASON = "cardinality_limit"
"""`metricgate_processor_dropped_points` reason for points of refused series in drop mode."""
OTHER_METRICS = "_other"
"""Self-metric `metric` label for names beyond the first `telemetry_metrics`."""
_DRAIN_CHUNK = 20_000


class CardinalityLimiter(Processor):
    """Caps active series globally, per metric and per label value (see the package docstring)."""

    def __init__(
        self,
        component_id: str,
        config: CardinalityLimitConfig,
        next_consumer: Consumer,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(component_id, next_consumer)
        self.config = config
        self.overflow = config.on_limit == "overflow"
        self._clock = clock
        self.budgets = Budgets(
            config, clock(), always_refuse=is_overflow_series if self.overflow else None
        )
        self._telemetry: SelfMetrics | None = None
        self._counters: offenders.Counters | None = None
        self._host: Host | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._metric_labels: set[str] = set()
        self._folded: dict[str, int] = {}
        self._dropped: dict[str, int] = {}
        self._tenant_refused: dict[str, int] = {}
        """Tenant -> points of series refused since the last flush (per-tenant telemetry)."""
        self._restored: Batch | None = None
        """Verdicts from a snapshot, taken once the budgets know their tenants (`start`)."""
        self._sharing: tuple[str, int] | None = None
        """In a `--workers N` set: (reserve topic, this worker), see `leases`."""

    # -- state across restarts (`metricgate.pipeline.snapshots`) ---------------------------------

    snapshot_version = 1

    def snapshot_state(self) -> StateSnapshot:
        """Every tracked series with its verdict (the timestamp: 0 admitted, 1 refused); what
        the overflow series folded so far is not kept."""
        out = SnapshotPoints()
        for budget in self.budgets.all():
            tracker = budget.tracker
            for verdict, generations in enumerate(
                ((tracker.admitted, tracker.admitted_prev), (tracker.refused, tracker.refused_prev))
            ):
                for generation in generations:
                    for series in generation:
                        out.add(series, empty_value(series.metric.kind), verdict)
        return StateSnapshot(batch=out.batch())

    def restore_state(self, snapshot: StateSnapshot) -> None:
        self._restored = snapshot.batch

    def _take_verdicts(self, batch: Batch) -> None:
        now = self._clock()
        for group in batch.metrics:
            budget = self.budgets.of(group.metric.resource, now)
            for series, _, verdict, _ in snapshot_points(group):
                budget.tracker.restore(series, admitted=verdict == 0)

    @property
    def tracker(self) -> SeriesTracker:
        """The tracker of data without a tenant (of all data without `tenant_attribute`)."""
        return self.budgets.shared.tracker

    @property
    def folder(self) -> Folder:
        return self.budgets.shared.folder

    def adopt(self, previous: Component) -> bool:
        """Hot reload: keep `previous`'s tracked series and verdicts, counted against this
        config's limits, when they are counted the same way (see `Budgets.counts_like`)."""
        if not isinstance(previous, CardinalityLimiter):
            return False
        if not self.budgets.counts_like(previous.budgets):
            return False
        self.budgets = previous.budgets
        self.budgets.retune(self.config)
        self._metric_labels = previous._metric_labels
        return True

    async def start(self, host: Host) -> None:
        self._host, self._telemetry = host, host.telemetry
        self._counters = offenders.Counters(host.telemetry)
        self.budgets.configure(host.tenants)
        restored, self._restored = self._restored, None
        if restored is not None:
            self._take_verdicts(restored)
        offenders.register(host, self)
        self._share(host)
        self._sweeper = asyncio.create_task(self._sweep(), name=f"{self.component_id} sweeper")

    def _share(self, host: Host) -> None:
        """In a `--workers N` set, count each `max_series` as a share of the set's (`leases`)."""
        exchange = host.exchange
        if exchange is None or exchange.count < 2:
            return
        reserve_topic, release_topic = leases.topics(self.component_id)
        local = {reserve_topic: self._reserve_answer, release_topic: self._release_answer}

        async def ask(worker: int, topic: str, payload: bytes) -> bytes:
            if worker == exchange.index:
                return await local[topic](payload)
            return await exchange.ask(worker, topic, payload)

        if exchange.index == 0:
            if self.budgets.account is None:
                self.budgets.account = leases.Account(exchange.count, ask, release_topic)
            exchange.answer(reserve_topic, self._reserve_answer)
        exchange.answer(release_topic, self._release_answer)
        self._sharing = (reserve_topic, exchange.index)
        self.budgets.share_with(ask, exchange.count)

    async def _reserve_answer(self, payload: bytes) -> bytes:
        account = self.budgets.account
        if account is None:
            raise UnavailableError("cardinality_limit: only worker 0 grants shares of max_series")
        return json.dumps(await account.reserve(json.loads(payload))).encode()

    async def _release_answer(self, payload: bytes) -> bytes:
        key = json.loads(payload)["key"]
        if key is None:  # worker 0 started again: what this worker holds
            held = {
                b.tenant: b.tracker.allowance for b in self.budgets.all() if b.lease is not None
            }
            return json.dumps(held).encode()
        lease = self.budgets.lease(key)
        return json.dumps(lease.release() if lease is not None else {"absent": True}).encode()

    async def shutdown(self) -> None:
        sweeper, self._sweeper = self._sweeper, None
        if sweeper is not None:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
        if self._host is not None:
            offenders.unregister(self._host, self)

    async def _sweep(self) -> None:
        """Rotate and drain without traffic too, so memory and gauges follow the window."""
        interval = max(0.01, min(1.0, self.config.window / 4))
        while True:
            draining = any(budget.tracker.draining for budget in self.budgets.all())
            await asyncio.sleep(0 if draining else interval)
            now = self._clock()
            for budget in self.budgets.all():
                self._advance(budget, now)
                budget.tracker.drain(_DRAIN_CHUNK)
            self.budgets.forget_idle()

    @staticmethod
    def _advance(budget: Budget, now: float) -> None:
        rotation = budget.tracker.tick(now)
        if rotation is not Rotation.NONE:
            budget.folder.rotate(expire_all=rotation is Rotation.IDLE)
        if budget.tracker.draining:
            budget.tracker.drain(_DRAIN_CHUNK)

    async def consume(self, batch: Batch) -> None:
        now = self._clock()
        budget_of = self.budgets.of
        touched: list[Budget] = []
        groups: list[MetricPoints] = []
        changed = False
        for group in batch.metrics:
            budget = budget_of(group.metric.resource, now)
            if budget not in touched:  # a batch holds a tenant or two: a short list
                touched.append(budget)
                self._advance(budget, now)
            lease = budget.lease
            if lease is not None and lease.headroom < len(group.series):
                await self._reserve(lease, group, budget.tracker)
            limited = self._limit(group, budget)
            changed = changed or limited is not group
            if limited is not None:
                groups.append(limited)
        self._flush_telemetry(touched)
        if not changed:
            await self.next_consumer.consume(batch)
        elif groups:
            await self.next_consumer.consume(Batch(groups))

    async def _reserve(
        self, lease: leases.Lease, group: MetricPoints, tracker: SeriesTracker
    ) -> None:
        """Room in this worker's share for the series of `group` no generation knows."""
        assert self._sharing is not None
        topic, worker = self._sharing
        missing = set(filterfalse(tracker.admitted.__contains__, group.series))
        if not missing:  # the usual case at the budget: every series known
            return
        known = (tracker.admitted_prev, tracker.refused, tracker.refused_prev)
        need = sum(1 for one in missing if not any(one in generation for generation in known))
        if need:
            await lease.reserve(topic, worker, need)

    def _limit(self, group: MetricPoints, budget: Budget) -> MetricPoints | None:
        """`group` itself when every point passes, else a new group (None when empty)."""
        series = group.series
        tracker, folder = budget.tracker, budget.folder
        missing = dict.fromkeys(filterfalse(tracker.admitted.__contains__, series))
        if not missing:
            return group
        classify = tracker.classify
        refused = {s for s in missing if not classify(s)}
        if not refused:
            return group
        keep: list[int] = []
        refused_at: list[int] = []
        for index, one in enumerate(series):
            (refused_at if one in refused else keep).append(index)
        out = group.select(keep)
        name = group.metric.name
        if budget.tenant:
            refused_points = self._tenant_refused
            refused_points[budget.tenant] = refused_points.get(budget.tenant, 0) + len(refused_at)
        if self.overflow:
            dropped_before = sum(folder.dropped.values())
            for target, point in folder.fold(group, refused_at):
                assert point.value is not None
                out.append(target, point.value, point.timestamp, point.start)
            folded = len(refused_at) - (sum(folder.dropped.values()) - dropped_before)
            self._folded[name] = self._folded.get(name, 0) + folded
        else:
            self._dropped[DROP_REASON] = self._dropped.get(DROP_REASON, 0) + len(refused_at)
        return out if out.series else None

    def metric_label(self, name: str) -> str:
        """`name`, or `_other` once `telemetry_metrics` names have a label of their own."""
        labels = self._metric_labels
        if name in labels:
            return name
        if len(labels) < self.config.telemetry_metrics:
            labels.add(name)
            return name
        return OTHER_METRICS

    def _flush_telemetry(self, budgets: list[Budget]) -> None:
        if not (
            self._folded
            or self._dropped
            or any(b.tracker.new_refusals or b.folder.dropped for b in budgets)
        ):
            return
        telemetry, counters, cid = self._telemetry, self._counters, self.component_id
        for budget in budgets:
            refusals, dropped = budget.tracker.new_refusals, budget.folder.dropped
            if telemetry is not None and counters is not None:
                for (name, reason), count in refusals.items():
                    counters.refused_series.labels(cid, self.metric_label(name), reason).inc(count)
                for reason, count in dropped.items():
                    telemetry.processor_dropped.labels(cid, reason).inc(count)
            refusals.clear()
            dropped.clear()
        if telemetry is not None and counters is not None:
            for name, count in self._folded.items():
                counters.folded_points.labels(cid, self.metric_label(name)).inc(count)
            for reason, count in self._dropped.items():
                telemetry.processor_dropped.labels(cid, reason).inc(count)
            for tenant, count in self._tenant_refused.items():
                counters.tenant_refused_points.labels(cid, tenant).inc(count)
        self._folded.clear()
        self._dropped.clear()
        self._tenant_refused.clear()


FACTORY = processor_factory(
    "cardinality_limit",
    CardinalityLimitConfig,
    CardinalityLimiter,
    "caps active series per metric, per label value and in total; overflow or drop the rest",
)
