"""`Deltas`: first-point policies, restarts, resets, ordering, and the Prometheus `increase()`."""

from __future__ import annotations

from collections import Counter
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metricgate.model.delta import (
    INITIAL,
    OUT_OF_ORDER,
    RESET,
    Deltas,
    FirstPoint,
    Last,
    counts_increase,
    number_increase,
    take_out_of_order,
)

S = 1_000_000_000
T0 = 1_700_000_000 * S


def at(seconds: float) -> int:
    return T0 + int(seconds * S)


def prometheus_increase(values: list[float]) -> float:
    """PromQL `increase()` without extrapolation: a decrease is a reset to 0, then the value."""
    return sum(cur - prev if cur >= prev else cur for prev, cur in pairwise(values))


@pytest.mark.parametrize(
    ("first", "since", "start", "time", "sent"),
    [
        (FirstPoint.KEEP, 0, 0, at(10), True),
        (FirstPoint.DROP, 0, at(5), at(10), False),
        (FirstPoint.KNOWN_START, 0, at(5), at(10), True),
        (FirstPoint.KNOWN_START, 0, 0, at(10), False),  # no start time
        (FirstPoint.KNOWN_START, 0, at(10), at(10), False),  # start == time: not known
        (FirstPoint.KNOWN_START, 0, at(11), at(10), False),  # start after time
        (FirstPoint.KNOWN_START, at(6), at(5), at(10), False),  # started before `since`
        (FirstPoint.KNOWN_START, at(5), at(5), at(10), True),  # `since` itself is trusted
        (FirstPoint.AFTER_SINCE, at(6), at(5), at(10), False),
        (FirstPoint.AFTER_SINCE, at(5), at(5), at(10), True),
        (FirstPoint.AFTER_SINCE, at(5), at(10), at(10), False),  # start == time
        (FirstPoint.AFTER_SINCE, at(5), at(11), at(10), True),  # Datadog trusts it
    ],
)
def test_first_point_policy(
    first: FirstPoint, since: int, start: int, time: int, sent: bool
) -> None:
    deltas = Deltas(number_increase, first, since=since)
    assert deltas.delta("s", start, time, 7.0) == (7.0 if sent else None)
    if sent:
        assert deltas.window_start == start
    else:
        assert deltas.reason == INITIAL
    # the first point is the baseline either way
    assert deltas.delta("s", start, time + S, 9.0) == 2.0
    assert deltas.window_start == time


def test_out_of_order_and_repeated_points() -> None:
    repeats = Deltas(number_increase, FirstPoint.KEEP)
    strict = Deltas(number_increase, FirstPoint.KEEP, repeats=False)
    for deltas in (repeats, strict):
        assert deltas.delta("s", 0, at(10), 5.0) == 5.0
        assert deltas.delta("s", 0, at(9), 1.0) is None
        assert deltas.reason == OUT_OF_ORDER
    assert repeats.delta("s", 0, at(10), 6.0) == 1.0  # same time: a new point
    assert strict.delta("s", 0, at(10), 6.0) is None  # same time: a duplicate
    assert strict.reason == OUT_OF_ORDER
    assert strict.delta("s", 0, at(11), 6.0) == 1.0  # the state never moved


def test_out_of_order_points_are_counted_until_taken() -> None:
    numbers = Deltas(number_increase, FirstPoint.KEEP)
    counts = Deltas(counts_increase, FirstPoint.KEEP)
    numbers.delta("n", 0, at(10), 1.0)
    counts.delta("c", 0, at(10), (1.0,))
    for deltas, value in ((numbers, 0.0), (numbers, 0.0), (counts, (0.0,))):
        assert deltas.delta("n" if deltas is numbers else "c", 0, at(5), value) is None
    assert take_out_of_order(Counter({"other": 1}), numbers, counts) == {
        "other": 1,
        OUT_OF_ORDER: 3,
    }
    assert take_out_of_order(Counter(), numbers, counts) == {}  # no zero entry


def test_a_new_start_restarts_and_zero_start_is_unknown_only_when_asked() -> None:
    exact = Deltas(number_increase, FirstPoint.KEEP)
    lenient = Deltas(number_increase, FirstPoint.KEEP, zero_start_unknown=True)
    for deltas in (exact, lenient):
        deltas.delta("s", at(1), at(10), 5.0)
        assert deltas.delta("s", at(12), at(20), 8.0) == 8.0  # restarted: whole value
        assert deltas.window_start == at(12)
    assert exact.delta("s", 0, at(30), 9.0) == 9.0  # start lost: a restart too
    assert lenient.delta("s", 0, at(30), 9.0) == 1.0  # unknown start: same stream
    assert lenient.delta("s", at(12), at(40), 10.0) == 1.0  # the known start was kept


def test_a_reset_restarts_or_is_dropped_and_rebased() -> None:
    restart = Deltas(number_increase, FirstPoint.KNOWN_START)
    collector = Deltas(number_increase, FirstPoint.KEEP, drop_reset=True)
    for deltas in (restart, collector):
        deltas.delta("s", at(0), at(10), 50.0)
    assert restart.delta("s", at(0), at(20), 3.0) == 3.0  # start known: whole value
    assert collector.delta("s", at(0), at(20), 3.0) is None
    assert collector.reason == RESET
    assert collector.delta("s", at(0), at(30), 4.0) == 1.0  # rebased on the dropped point
    assert collector.window_start == at(20)


def test_a_reset_without_a_known_start_only_sets_the_baseline() -> None:
    deltas = Deltas(number_increase, FirstPoint.KNOWN_START)
    assert deltas.delta("s", 0, at(10), 50.0) is None
    assert deltas.delta("s", 0, at(20), 3.0) is None
    assert deltas.reason == INITIAL
    assert deltas.delta("s", 0, at(30), 4.0) == 1.0


def test_counts_increase() -> None:
    assert counts_increase((5.0, 2.5, 1.0), (3.0, 3.0, 1.0)) == (2.0, -0.5, 0.0)
    assert counts_increase((2.0, 1.0), (3.0, 0.0)) is None  # the count went down
    assert counts_increase((5.0, 1.0, 2.0), (3.0, 1.0)) is None  # buckets changed
    deltas = Deltas(counts_increase, FirstPoint.KEEP)
    deltas.delta("h", 0, at(1), (3.0, 1.0))
    assert deltas.delta("h", 0, at(2), (1.0, 0.5)) == (1.0, 0.5)  # reset: whole value


def test_callers_may_keep_their_own_state_subclass() -> None:
    class Stream(Last[float]):
        __slots__ = ("seen",)

        def __init__(self, start: int, time: int, value: float) -> None:
            super().__init__(start, time, value)
            self.seen = 0.0

    deltas = Deltas(number_increase, FirstPoint.KEEP)
    stream = Stream(0, at(1), 1.0)
    assert deltas.advance(stream, 0, at(2), 4.0) == 3.0
    assert (stream.time, stream.value) == (at(2), 4.0)
    assert not hasattr(stream, "__dict__")
    assert not deltas.last  # `advance` keeps no state of its own


# A counter: per step (increment, reset-to value or None, resend the point and a late one).
steps = st.lists(
    st.tuples(st.integers(0, 1000), st.none() | st.integers(0, 1000), st.booleans()),
    min_size=1,
    max_size=40,
)


def _run(steps: list[tuple[int, int | None, bool]]) -> list[tuple[int, int, float, bool]]:
    """(start, time, value, resent) points of a counter that starts at 100 and resets at will."""
    value, start, time = 100.0, at(-100), at(0)
    points = [(start, time, value, False)]
    for increment, reset_to, resend in steps:
        time += S
        if reset_to is not None and reset_to < value:
            value, start = float(reset_to), time - S // 2
        else:
            value += increment
        points.append((start, time, value, False))
        if resend:  # a retry of this point, and a late one with a stale value
            points.append((start, time, value, True))
            points.append((start, time - S // 4, 0.0, True))
    return points


@given(steps)
def test_deltas_add_up_to_the_prometheus_increase(
    steps: list[tuple[int, int | None, bool]],
) -> None:
    points = _run(steps)
    values = [value for _, _, value, resent in points if not resent]
    expected = prometheus_increase(values)
    # the start times tell restarts; the first point started before we watched
    known = Deltas(number_increase, FirstPoint.KNOWN_START, since=at(-50), repeats=False)
    # no start times: a decrease alone is a reset; the first point is kept whole
    keep = Deltas(number_increase, FirstPoint.KEEP, repeats=False, zero_start_unknown=True)
    known_total = keep_total = 0.0
    for start, time, value, _ in points:
        known_total += known.delta("s", start, time, value) or 0.0
        keep_total += keep.delta("s", 0, time, value) or 0.0
    assert known_total == expected
    assert keep_total == values[0] + expected


@given(steps)
def test_dropping_resets_counts_only_the_increases(
    steps: list[tuple[int, int | None, bool]],
) -> None:
    points = [p for p in _run(steps) if not p[3]]
    collector = Deltas(number_increase, FirstPoint.DROP, drop_reset=True, zero_start_unknown=True)
    total = sum(collector.delta("s", 0, time, value) or 0.0 for _, time, value, _ in points)
    values = [value for _, _, value, _ in points]
    assert total == sum(max(cur - prev, 0.0) for prev, cur in pairwise(values))
