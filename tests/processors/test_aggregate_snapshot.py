"""The aggregate processor across a graceful restart: what a restarted processor emits is what one
that never stopped emits (running totals, input baselines, and the open window when shutdown did
not emit it)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from metricgate.pipeline.snapshots import SnapshotStore, Tracked, config_digest
from metricgate.processors.aggregate import AggregateProcessor
from tests.support.aggregate import BASE, NS, A, B, C, Rows, feed, make

BEFORE: Rows = [
    (BASE + 10, {A: 2.0, B: 1.0}),
    (BASE + 70, {A: 5.0, B: 1.0}),
    (BASE + 80, {A: 8.0, B: 2.0}),
]
AFTER: Rows = [(BASE + 100, {A: 9.0, B: 4.0}), (BASE + 110, {A: 12.0, B: 4.0})]
LATER: Rows = [(BASE + 130, {A: 20.0, B: 5.0})]
"""Samples before the restart (at BASE + 90), after it in the same window, and in the next."""


def _through_a_file(tmp_path: Path, old: AggregateProcessor, new: AggregateProcessor) -> None:
    store = SnapshotStore(tmp_path)
    digest = config_digest("aggregate", old.config)
    store.save(Tracked("processor-aggregate@metrics", "aggregate", digest, old))
    store.restore_all([Tracked("processor-aggregate@metrics", "aggregate", digest, new)])


@pytest.mark.parametrize("flush_on_shutdown", [False, True])
async def test_a_restarted_processor_emits_what_an_uninterrupted_one_does(
    tmp_path: Path, flush_on_shutdown: bool
) -> None:
    rules = (
        f"[{{match: c_total, interval: 1m, flush_on_shutdown: {str(flush_on_shutdown).lower()},"
        " outputs: [total, increase, count_samples, max]}]"
    )
    steady, steady_sink, steady_clock = make(rules)
    await feed(steady, steady_clock, C, [*BEFORE, *AFTER, *LATER])
    await steady.flush(BASE + 181)
    expected = steady_sink.take()
    assert len(expected) == (24 if flush_on_shutdown else 16)  # 4 outputs, 2 series, windows

    first, first_sink, first_clock = make(rules)
    await feed(first, first_clock, C, BEFORE)
    first_clock.t = BASE + 90
    await first.shutdown()
    emitted_at_shutdown = first_sink.take()
    second, second_sink, second_clock = make(rules, start=BASE + 91)
    _through_a_file(tmp_path, first, second)
    await feed(second, second_clock, C, [*AFTER, *LATER])
    await second.flush(BASE + 181)
    got = second_sink.take()

    def last_totals(points: Sequence[tuple[str, dict[str, Any], object, int, int]]) -> list[object]:
        end = (BASE + 180) * NS
        return [p for p in points if p[0].endswith("_total") and p[3] == end]

    # the running totals go on, with the same start time
    assert last_totals(got) == last_totals(expected) != []
    if not flush_on_shutdown:
        # nothing went out at shutdown, and the open window went on: every output as if steady
        assert emitted_at_shutdown == []
        assert got == expected
    else:
        # the partial window went out at shutdown, so the window restarts (counted once)
        assert emitted_at_shutdown


async def test_a_snapshot_of_other_rules_is_not_taken(tmp_path: Path) -> None:
    first, _, clock = make("[{match: c_total, interval: 1m, outputs: [total]}]")
    await feed(first, clock, C, BEFORE)
    second, _, _ = make("[{match: c_total, interval: 2m, outputs: [total]}]")
    store = SnapshotStore(tmp_path)
    store.save(Tracked("p", "aggregate", config_digest("aggregate", first.config), first))
    store.restore_all(
        [Tracked("p", "aggregate", config_digest("aggregate", second.config), second)]
    )
    assert all(not rule.inputs and not rule.groups for rule in second.rules)
