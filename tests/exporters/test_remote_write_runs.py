"""Remembered runs (`runs.RunMemo`) change nothing but the cost: the same bytes, the same expiry.

A scrape's series come back as the same objects in the same order each interval; the encoder
then takes their states from a memo instead of its table. These tests drive an encoder with the
memo and one with the at-once path switched off through the same rounds (series kept, ended,
re-created, reordered, expired) and require the same fragments, drops and expiries, and check
the memo's own promises: no lookup for a known run, no use after a state left, bounded size.
"""

from __future__ import annotations

from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

from metricgate.exporters.prometheus_remote_write import Encoder
from metricgate.exporters.prometheus_remote_write import encoder as encoder_module
from metricgate.exporters.prometheus_remote_write.outputs import SeriesState
from metricgate.exporters.prometheus_remote_write.runs import MIN_RUN, RunMemo
from metricgate.model import (
    FLAG_NO_RECORDED_VALUE,
    INTERNER,
    Batch,
    MetricKind,
    MetricPoints,
    Series,
)
from metricgate.translate import PrometheusTranslator
from tests.support.batches import metric

NS = 1_700_000_000_000_000_000
GAUGE = metric("runs_gauge", kind=MetricKind.GAUGE)
SERIES = [
    INTERNER.intern_series(GAUGE, (("target", str(t)), ("k", str(k))))
    for t in range(3)
    for k in range(10)
]
RENEWED = [
    INTERNER.intern_series(GAUGE, (("target", str(t)), ("k", f"{k}-renewed")))
    for t in range(3)
    for k in range(10)
]
"""The same places in a target's run, taken by other series (churn: a pod started again)."""

# One step: ("write", targets, ended keys, value, renewed keys) writes each listed target's 10
# series at one timestamp (a run each), ending the listed keys of the first target and taking the
# renewed series at the renewed keys; ("expire", age) forgets series not written for `age` steps.
write = st.tuples(
    st.just("write"),
    st.lists(st.integers(0, 2), min_size=1, max_size=3, unique=True),
    st.lists(st.integers(0, 9), max_size=2, unique=True),
    st.sampled_from([0.0, 1.5, 7.0]),
    st.lists(st.integers(0, 9), max_size=3, unique=True),
)
expire = st.tuples(st.just("expire"), st.integers(0, 3))
steps = st.lists(st.one_of(write, write, write, expire), min_size=1, max_size=12)


def drive(plan: list[tuple[object, ...]], shards: int) -> list[object]:
    enc = Encoder(PrometheusTranslator(), target_info=False, max_samples=25)
    out: list[object] = []
    for number, step in enumerate(plan):
        now = float(number)
        if step[0] == "expire":
            per_shard, removed = enc.expire(now - float(step[1]) - 0.5, shards, 1_000)  # type: ignore[arg-type]
            out.append(("expired", removed, [[f.data for f in shard] for shard in per_shard]))
            continue
        _, targets, ended, value, renewed = step
        group = MetricPoints(GAUGE)
        for target in targets:  # type: ignore[attr-defined]
            for key in range(10):
                series = (RENEWED if key in renewed else SERIES)[target * 10 + key]  # type: ignore[operator]
                flags = FLAG_NO_RECORDED_VALUE if target == targets[0] and key in ended else 0  # type: ignore[index, operator]
                group.append(series, value, NS + number * 1_000_000 + target, 0, flags)
        per_shard, drops = enc.encode(Batch([group]), shards, now)
        out.append(([[(f.data, f.samples) for f in shard] for shard in per_shard], dict(drops)))
    return out


@settings(max_examples=300, deadline=None)
@given(steps, st.integers(1, 3))
def test_memoised_runs_write_and_expire_as_the_per_point_loop(
    plan: list[tuple[object, ...]], shards: int
) -> None:
    fast = drive(plan, shards)
    with mock.patch.object(encoder_module, "write_numbers", lambda *a, **k: False):
        slow = drive(plan, shards)
    assert fast == slow


def states_for(series: list[Series]) -> dict[Series, SeriesState]:
    table = {}
    for number, one in enumerate(series):
        state = SeriesState(number, "m", [("k", str(number))], 0.0)
        state.head = f"head-{number}".encode()
        table[one] = state
    return table


def counted(table: dict[Series, SeriesState]) -> tuple[RunMemo, list[Series]]:
    """A memo over `table`, and the list of the series it looked up."""
    lookups: list[Series] = []

    def get(series: Series) -> SeriesState | None:
        lookups.append(series)
        return table.get(series)

    return RunMemo(get), lookups


def test_a_known_run_is_taken_without_a_lookup() -> None:
    memo, lookups = counted(states_for(SERIES[:10]))
    first = memo.run(SERIES[:10], 0, 10, 1.0)
    assert first is not None and len(lookups) == 10
    again = memo.run(list(SERIES[:10]), 0, 10, 2.0)  # a new list of the same objects
    assert again is not None and len(lookups) == 10
    assert again.heads == [f"head-{n}".encode() for n in range(10)]
    reordered = [SERIES[0], *reversed(SERIES[1:10])]  # 8 places change, SERIES[5] stays
    assert memo.run(reordered, 0, 10, 3.0) is not None and len(lookups) == 18


def test_a_run_with_some_series_replaced_looks_up_only_those() -> None:
    table = states_for([*SERIES[:10], *RENEWED[:10]])
    memo, lookups = counted(table)
    first = memo.run(SERIES[:10], 0, 10, 1.0)
    assert first is not None
    first.split(3)
    churned = [RENEWED[k] if k in (2, 7) else SERIES[k] for k in range(10)]
    lookups.clear()
    patched = memo.run(churned, 0, 10, 2.0)
    assert patched is not None and lookups == [RENEWED[2], RENEWED[7]]
    assert patched.states == [table[one] for one in churned]
    assert patched.heads == [table[one].head for one in churned]
    fresh = RunMemo(table.get).run(churned, 0, 10, 2.0)
    assert fresh is not None
    assert [(shard, pick(list(range(10)))) for shard, pick in patched.split(3)] == [
        (shard, pick(list(range(10)))) for shard, pick in fresh.split(3)
    ]
    lookups.clear()
    assert memo.run(churned, 0, 10, 3.0) is patched and not lookups  # the patched run is known
    memo.fold()
    assert table[SERIES[2]].updated == 1.0 and table[RENEWED[2]].updated == 3.0


def test_a_run_is_not_taken_once_one_of_its_states_left() -> None:
    table = states_for(SERIES[:10])
    memo = RunMemo(table.get)
    assert memo.run(SERIES[:10], 0, 10, 1.0) is not None
    gone = table.pop(SERIES[3])
    memo.forget(gone)
    assert memo.run(SERIES[:10], 0, 10, 2.0) is None  # looked up again: SERIES[3] has no state
    table[SERIES[3]] = renewed = SeriesState(3, "m", [("k", "3")], 2.0)
    renewed.head = b"renewed"
    run = memo.run(SERIES[:10], 0, 10, 2.0)
    assert run is not None and run.states[3] is renewed and run.heads[3] == b"renewed"


def test_time_of_a_memoised_run_reaches_its_states_when_folded() -> None:
    table = states_for(SERIES[:10])
    memo = RunMemo(table.get)
    memo.run(SERIES[:10], 0, 10, 1.0)
    memo.run(SERIES[:10], 0, 10, 9.0)
    assert {state.updated for state in table.values()} == {1.0}
    memo.fold()
    assert {state.updated for state in table.values()} == {9.0}


def test_memos_are_bounded_and_short_runs_are_not_kept() -> None:
    table = states_for(SERIES)
    memo = RunMemo(table.get, max_runs=2)
    assert memo.run(SERIES, 0, MIN_RUN - 1, 1.0) is not None
    assert len(memo) == 0
    run = memo.run(SERIES, 0, 10, 1.0)
    assert run is not None
    spread = {shard: list(pick(run.heads)) for shard, pick in run.split(3)}
    assert spread == {k: [f"head-{n}".encode() for n in range(10) if n % 3 == k] for k in range(3)}
    for start in (0, 10, 20):
        memo.run(SERIES, start, start + 10, 5.0 + start)
        assert len(memo) <= 2
    memo.clear()
    assert len(memo) == 0
    assert table[SERIES[0]].updated == 5.0 and table[SERIES[10]].updated == 15.0


def test_a_new_series_refused_among_known_ones_is_counted_once() -> None:
    """Two new series whose labels collide (keys that sanitise alike) join known ones: the
    at-once path creates states, meets the refusal, and leaves the group to the loop, which
    counts `duplicate_series` once; bytes and drops equal the loop's own."""
    known = [INTERNER.intern_series(GAUGE, (("k", str(k)),)) for k in range(8)]
    twins = [INTERNER.intern_series(GAUGE, ((key, "x"),)) for key in ("a.b", "a_b")]

    def run() -> list[object]:
        enc = Encoder(PrometheusTranslator(), target_info=False)
        out: list[object] = []
        for number, members in enumerate((known, [*known[:4], *twins, *known[4:]])):
            group = MetricPoints(GAUGE)
            for series in members:
                group.append(series, 2.0, NS + number * 1_000_000)
            per_shard, drops = enc.encode(Batch([group]), 2, float(number))
            out.append(([[f.data for f in shard] for shard in per_shard], dict(drops), len(enc)))
        return out

    fast = run()
    with mock.patch.object(encoder_module, "write_numbers", lambda *a, **k: False):
        slow = run()
    assert fast == slow
    assert fast[1][1] == {"duplicate_series": 1} and fast[1][2] == 9
