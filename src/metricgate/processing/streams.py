"""Per-series state for the stateful processors (`delta_to_cumulative`, `cumulative_to_delta`).

`StreamProcessor` is what both share around their conversion: the table, the drop counter and
the batch loop (groups the processor does not convert pass through untouched, a batch with none
is forwarded as it came).

A `StreamTable` maps each input Series to the processor's state for it, caps how many it tracks,
and forgets states not updated for `max_stale` seconds: a timer sweeps the table every quarter of
`max_stale`, so a silent stream is gone between 1 and 1.25 `max_stale` after its last point. Every
state records `seen`, the monotonic time of the batch that last updated it; processors read the
clock once per batch, never per point.

Both keep their streams across a graceful restart (`metricgate.pipeline.snapshots`): each state
is written as one point (its series, value, timestamp and start), and read back into a state by the
subclass (`_revive`), which also rebuilds the output series.

Invariant: only the owning processor touches the table, from the event loop (no locks needed);
a forgotten stream simply starts over with its next point.
"""

from __future__ import annotations

import logging
import time
from abc import abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from metricgate.model import Batch, MetricPoints, PointValue, Series
from metricgate.periodic import Periodic
from metricgate.pipeline.component import Component, Consumer, Processor
from metricgate.pipeline.host import Host
from metricgate.pipeline.snapshots import SnapshotPoints, StateSnapshot, points
from metricgate.processing.drops import DropCounter

log = logging.getLogger(__name__)


class StreamState(Protocol):
    """What the table needs from a state: when it was last updated (monotonic seconds)."""

    seen: float


S = TypeVar("S", bound=StreamState)


class StreamTable(Generic[S]):
    """States by input Series, with a staleness sweep and an optional cap (see module docstring)."""

    def __init__(
        self,
        component_id: str,
        max_stale: float,
        max_streams: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.component_id = component_id
        self.max_stale = max_stale
        """Seconds without an update before a state is forgotten; 0 keeps states forever."""
        self.max_streams = max_streams
        """Most states kept at once; 0 means no limit."""
        self.clock = clock
        self.streams: dict[Series, S] = {}
        self._sweeper = Periodic(
            f"{component_id} stale-state sweep", max_stale / 4, self.sweep, log,
            {"processor": component_id},
        )  # fmt: skip

    def full(self) -> bool:
        """True when a new stream must be refused."""
        return 0 < self.max_streams <= len(self.streams)

    def sweep(self, now: float | None = None) -> int:
        """Forget states not updated for `max_stale`; returns how many went."""
        if self.max_stale <= 0:
            return 0
        cutoff = (self.clock() if now is None else now) - self.max_stale
        stale = [series for series, state in self.streams.items() if state.seen < cutoff]
        for series in stale:
            del self.streams[series]
        return len(stale)

    def start(self, host: Host) -> None:
        """Start the sweep timer."""
        if self.max_stale > 0:
            self._sweeper.start()

    async def stop(self) -> None:
        await self._sweeper.stop()


class StreamProcessor(Processor, Generic[S]):
    """A processor converting streams point by point, with per-series state in `table`.

    Subclasses name their drop reasons in `DROP_REASONS` and implement `_convert`.
    """

    DROP_REASONS: ClassVar[tuple[str, ...]] = ()

    def __init__(self, component_id: str, next_consumer: Consumer, table: StreamTable[S]) -> None:
        super().__init__(component_id, next_consumer)
        self.table = table
        self.dropped = DropCounter(component_id)

    def adopt(self, previous: Component) -> bool:
        """Hot reload: keep `previous`'s per-series state (running totals, last points), which
        is the same whatever `max_stale` and `max_streams` say; the new limits apply to it from
        now on."""
        if type(previous) is not type(self):
            return False
        assert isinstance(previous, StreamProcessor)
        self.table.streams = previous.table.streams
        return True

    async def start(self, host: Host) -> None:
        self.dropped.bind(host)
        table = self.table
        self.observe(
            host.telemetry.processor_active_streams,
            lambda: {(self.component_id,): float(len(table.streams))},
        )
        table.start(host)

    async def shutdown(self) -> None:
        await self.table.stop()

    async def consume(self, batch: Batch) -> None:
        out: list[MetricPoints] = []
        changed = False
        drops = dict.fromkeys(self.DROP_REASONS, 0)
        now = self.table.clock()
        for group in batch.metrics:
            result = self._convert(group, now, drops)
            if result is None:
                out.append(group)
                continue
            changed = True
            if result.series:
                out.append(result)
        for reason, count in drops.items():
            self.dropped.add(reason, count)
        if not changed:
            await self.next_consumer.consume(batch)
        elif out:
            await self.next_consumer.consume(Batch(out))

    # -- state across restarts ----------------------------------------------------------------

    snapshot_version = 1

    def snapshot_state(self) -> StateSnapshot:
        """Every stream's state as a point of its input series."""
        out = SnapshotPoints()
        for series, state in self.table.streams.items():
            out.add(series, *self._kept(state))
        return StateSnapshot(self._kept_fields(), out.batch())

    def restore_state(self, snapshot: StateSnapshot) -> None:
        self._restore_fields(snapshot.fields)
        now = self.table.clock()
        streams = self.table.streams
        for group in snapshot.batch.metrics:
            for series, value, timestamp, start in points(group):
                state = self._revive(series, value, timestamp, start, now)
                if state is not None:
                    streams[series] = state

    @abstractmethod
    def _kept(self, state: S) -> tuple[PointValue, int, int]:
        """What a snapshot keeps of `state`: its value, timestamp and start timestamp."""

    @abstractmethod
    def _revive(
        self, series: Series, value: Any, timestamp: int, start: int, now: float
    ) -> S | None:
        """The state `_kept` wrote for `series`, or None if this processor has no use for it."""

    def _kept_fields(self) -> dict[str, Any]:
        """Processor-wide values a snapshot keeps besides the streams."""
        return {}

    def _restore_fields(self, fields: dict[str, Any]) -> None:
        """Take back `_kept_fields` (raise `ValueError` if they do not fit)."""

    @abstractmethod
    def _convert(
        self, group: MetricPoints, now: float, drops: dict[str, int]
    ) -> MetricPoints | None:
        """The converted group (possibly empty), or None when `group` passes through as is."""
