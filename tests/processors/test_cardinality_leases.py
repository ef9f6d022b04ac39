"""`max_series` in a `--workers N` set (`cardinality_limit.leases`): real limiters, one per
worker, joined by an in-process exchange. The set never admits more than `max_series` series,
admits as many as one process would, and recovers the room of a worker started again."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metricgate import role
from metricgate.errors import UnavailableError
from metricgate.model import INTERNER, Batch, MetricPoints, Temporality, sorted_attributes
from metricgate.pipeline.exchange import Answer
from metricgate.pipeline.host import Host
from metricgate.processors.cardinality_limit import (
    CardinalityLimitConfig,
    CardinalityLimiter,
    leases,
)
from metricgate.telemetry.metrics import SelfMetrics
from tests.support.batches import metric

METRICS = [metric(f"lease_metric_{i}", temporality=Temporality.DELTA) for i in range(6)]


class _Sink:
    async def consume(self, batch: Batch) -> None:
        pass


class _Set:
    """The workers' topics, as the real exchange serves them (an unknown topic is refused)."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.topics: list[dict[str, Answer]] = [{} for _ in range(count)]
        self.down: set[int] = set()

    def exchange(self, index: int) -> _Exchange:
        return _Exchange(self, index)


class _Exchange:
    def __init__(self, workers: _Set, index: int) -> None:
        self.workers, self.index, self.count = workers, index, workers.count

    def answer(self, topic: str, handler: Answer) -> None:
        self.workers.topics[self.index][topic] = handler

    async def ask(self, worker: int, topic: str, payload: bytes) -> bytes:
        await asyncio.sleep(0)  # another worker's turn, as over a socket
        if worker in self.workers.down or topic not in self.workers.topics[worker]:
            raise UnavailableError(f"worker {worker} cannot answer {topic}")
        return await self.workers.topics[worker][topic](payload)

    async def ask_peers(self, topic: str, payload: bytes) -> list[bytes]:
        others = [w for w in range(self.count) if w != self.index]
        return [await self.ask(w, topic, payload) for w in others]


def _limiter(max_series: int) -> CardinalityLimiter:
    config = CardinalityLimitConfig.model_validate({"max_series": max_series, "on_limit": "drop"})
    return CardinalityLimiter("cardinality_limit", config, _Sink(), clock=lambda: 0.0)


async def _started(limiter: CardinalityLimiter, exchange: _Exchange | None) -> CardinalityLimiter:
    host = Host(SelfMetrics())
    host.exchange = exchange  # type: ignore[assignment]
    await limiter.start(host)
    return limiter


def _batch(traffic: list[tuple[int, int]]) -> Batch:
    groups: dict[int, MetricPoints] = {}
    for m, user in traffic:
        group = groups.setdefault(m, MetricPoints(METRICS[m]))
        series = INTERNER.intern_series(METRICS[m], sorted_attributes({"user": f"u{user}"}))
        group.append(series, 1.0, 1)
    return Batch(list(groups.values()))


MINE = next(m for m in range(6) if role.owner(METRICS[m].name, 2) == 0)
"""A metric worker 0 of two owns; `THEIRS` one worker 1 owns."""
THEIRS = next(m for m in range(6) if role.owner(METRICS[m].name, 2) == 1)


async def _two(max_series: int) -> tuple[_Set, CardinalityLimiter, CardinalityLimiter]:
    workers = _Set(2)
    first = await _started(_limiter(max_series), workers.exchange(0))
    return workers, first, await _started(_limiter(max_series), workers.exchange(1))


def _admitted(limiters: list[CardinalityLimiter]) -> int:
    return sum(limiter.tracker.admitted_total for limiter in limiters)


async def _run_set(
    count: int, max_series: int, requests: list[list[tuple[int, int]]], together: bool
) -> tuple[int, int, list[int]]:
    workers = _Set(count)
    parts = [await _started(_limiter(max_series), workers.exchange(i)) for i in range(count)]
    whole = await _started(_limiter(max_series), None)
    totals = []
    for request in requests:
        await whole.consume(_batch(request))
        sends = []
        for index, part in enumerate(parts):
            owned = [(m, u) for m, u in request if role.owner(METRICS[m].name, count) == index]
            if owned:
                sends.append(part.consume(_batch(owned)))
        if together:
            await asyncio.gather(*sends)
        else:
            for send in sends:
                await send
        totals.append(_admitted(parts))
    return whole.tracker.admitted_total, _admitted(parts), totals


@settings(max_examples=140, deadline=None)
@given(
    requests=st.lists(
        st.lists(st.tuples(st.integers(0, 5), st.integers(0, 30)), max_size=16), max_size=12
    ),
    count=st.integers(2, 4),
    max_series=st.integers(1, 30),
    together=st.booleans(),
)
def test_a_set_never_passes_the_budget_and_admits_what_one_process_admits(
    requests: list[list[tuple[int, int]]], count: int, max_series: int, together: bool
) -> None:
    whole, parts, totals = asyncio.run(_run_set(count, max_series, requests, together))
    assert all(total <= max_series for total in totals)
    if not together:  # the workers decide in turn: nothing refused while the set has room
        assert parts == whole


def test_room_a_worker_held_is_free_again_when_it_starts_again() -> None:
    async def scenario() -> None:
        workers, first, second = await _two(10)
        await second.consume(_batch([(THEIRS, u) for u in range(10)]))
        assert second.tracker.admitted_total == 10
        await first.consume(_batch([(MINE, u) for u in range(5)]))
        assert first.tracker.admitted_total == 0  # the set is full
        # worker 1 is killed and started again: its series (and its room) are gone
        second = await _started(_limiter(10), workers.exchange(1))
        await asyncio.sleep(leases.RETRY_S)  # refused room: worker 0 waits before it asks again
        await first.consume(_batch([(MINE, u) for u in range(5, 10)]))
        assert first.tracker.admitted_total == 5
        await second.consume(_batch([(THEIRS, u) for u in range(10)]))
        assert second.tracker.admitted_total == 5

    asyncio.run(scenario())


def test_worker_0_started_again_learns_what_the_others_hold() -> None:
    async def scenario() -> None:
        workers, coordinator, other = await _two(8)
        await other.consume(_batch([(THEIRS, u) for u in range(6)]))
        assert other.tracker.admitted_total == 6
        coordinator = await _started(_limiter(8), workers.exchange(0))
        await coordinator.consume(_batch([(MINE, u) for u in range(8)]))
        assert coordinator.tracker.admitted_total == 2
        assert _admitted([coordinator, other]) == 8

    asyncio.run(scenario())


def test_without_worker_0_a_worker_uses_the_room_it_holds_then_answers_retry() -> None:
    async def scenario() -> None:
        workers, _, other = await _two(100)
        await other.consume(_batch([(THEIRS, 0)]))
        held = other.tracker.allowance
        assert held is not None and 1 < held < 100  # what it needed and a little more
        workers.down.add(0)
        await other.consume(_batch([(THEIRS, u) for u in range(1, held)]))
        assert other.tracker.admitted_total == held
        with pytest.raises(UnavailableError, match="worker 0"):
            await other.consume(_batch([(THEIRS, held)]))
        assert other.tracker.admitted_total == held  # the series was not refused for good
        workers.down.clear()
        await other.consume(_batch([(THEIRS, held)]))
        assert other.tracker.admitted_total == held + 1

    asyncio.run(scenario())


def test_each_tenant_budget_is_shared_on_its_own() -> None:
    async def scenario() -> None:
        workers = _Set(2)
        config = CardinalityLimitConfig.model_validate(
            {"max_series": 5, "on_limit": "drop", "tenant_attribute": "service.name"}
        )
        parts = [
            await _started(
                CardinalityLimiter("cardinality_limit", config, _Sink(), clock=lambda: 0.0),
                workers.exchange(i),
            )
            for i in range(2)
        ]
        for tenant in ("team-a", "team-b"):
            metrics = [
                metric(f"tenant_metric_{i}", temporality=Temporality.DELTA, service=tenant)
                for i in range(6)
            ]
            assert {role.owner(m.name, 2) for m in metrics} == {0, 1}
            for user in range(4):
                for m in metrics:
                    owner = parts[role.owner(m.name, 2)]
                    group = MetricPoints(m)
                    attributes = sorted_attributes({"user": f"u{user}"})
                    group.append(INTERNER.intern_series(m, attributes), 1.0, 1)
                    await owner.consume(Batch([group]))
        for tenant in ("team-a", "team-b"):
            budgets = [part.budgets.tenants.get(tenant) for part in parts]
            admitted = [b.tracker.admitted_total if b is not None else 0 for b in budgets]
            assert sum(admitted) == 5, (tenant, admitted)
        assert all(part.tracker.admitted_total == 0 for part in parts)

    asyncio.run(scenario())
