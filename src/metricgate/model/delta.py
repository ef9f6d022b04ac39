"""Cumulative -> delta per series: one rule for first points, restarts and out-of-order points.

A `Deltas` turns each new cumulative point of a series into what it gained since the series'
last point, from per-series state `Last(start, time, value)`. What differs between its users is
policy, passed in once:

- `first` (`FirstPoint`): whether the whole value of a point with no usable predecessor goes out:
  the first point of a series and every restart. `DROP` never (it only sets the baseline); `KEEP`
  always; `KNOWN_START` when `0 < start < time` and `start >= since` (the counter provably started
  then, so its whole value is the exact delta since start; with `since` = when the caller started,
  "it started while we watched"); `AFTER_SINCE` when `start >= since` and `start != time` (the
  Datadog exporter's `auto`, which also trusts a start after the point's own time).
- `subtract(current, previous)`: the increase, or None when the value went down or the two values
  do not combine (different bucket layouts, lengths): a reset.
- `drop_reset`: False, a reset is a restart (the point goes out by `first`); True, the point is
  dropped (`RESET`) and becomes the new base (the Collector's `cumulativetodelta`).
- `repeats`: True, a point at the last one's time is a new point (its difference, usually 0,
  goes out); False, it is dropped like an older one (`OUT_OF_ORDER`).
- `zero_start_unknown`: True, a start of 0 means "not known": it marks no restart and never
  replaces a known start; False, any change of start, to or from 0, is a restart.

Out of order (`time` before the last one, or equal without `repeats`): dropped, state unchanged,
counted in `out_of_order` (`take_out_of_order` collects it for callers that report drops later).
A restart (another start time, or a reset without `drop_reset`) replaces the whole state.

Who uses what (each keeps its own table and bound; `cardinality_limit` does not use it, see its
`fold.py`):

| user                | first                          | drop_reset | repeats | zero_start_unknown |
| ------------------- | ------------------------------ | ---------- | ------- | ------------------ |
| datadog exporter    | config: AFTER_SINCE/KEEP/DROP  | no         | yes     | no                 |
| cloudwatch exporter | KNOWN_START (since 0)          | no         | yes     | no                 |
| cumulative_to_delta | config: KNOWN_START/KEEP/DROP  | yes        | no      | yes                |
| genai_cost          | KEEP                           | no         | no      | yes                |

Invariant: per point this is a dict lookup (or the caller's own), a few comparisons and at most
one `subtract` call (none for `number_increase`, which is inlined), with no allocation besides
the delta itself: it runs on the hot path of every user. A None result always sets `reason`.
"""

from __future__ import annotations

import enum
import operator
from collections import Counter
from collections.abc import Callable, Hashable
from typing import Any, Final, Generic, TypeVar

V = TypeVar("V")

OUT_OF_ORDER: Final = "out_of_order"
"""Drop reason: the point is older than the series' last one (or as old, without `repeats`)."""
INITIAL: Final = "initial"
"""Drop reason: a first point (or restart) whose whole value the `first` policy holds back."""
RESET: Final = "reset"
"""Drop reason: the value went down (or did not combine) and `drop_reset` is set."""


class FirstPoint(enum.Enum):
    """Whether the whole value of a first point (or a restart) goes out; see module docstring."""

    DROP = "drop"
    KEEP = "keep"
    KNOWN_START = "known_start"
    AFTER_SINCE = "after_since"


_KEEP: Final = FirstPoint.KEEP
_KNOWN_START: Final = FirstPoint.KNOWN_START
_AFTER_SINCE: Final = FirstPoint.AFTER_SINCE


class Last(Generic[V]):
    """The last accepted point of one cumulative series. Users may subclass it to add slots."""

    __slots__ = ("start", "time", "value")

    def __init__(self, start: int, time: int, value: V) -> None:
        self.start = start
        self.time = time
        self.value = value


class Deltas(Generic[V]):
    """Per-series cumulative state and the policy that turns its points into deltas."""

    __slots__ = (
        "_numbers",
        "drop_reset",
        "first",
        "last",
        "out_of_order",
        "reason",
        "repeats",
        "since",
        "subtract",
        "window_start",
        "zero_start_unknown",
    )

    def __init__(
        self,
        subtract: Callable[[V, V], V | None],
        first: FirstPoint,
        *,
        since: int = 0,
        drop_reset: bool = False,
        repeats: bool = True,
        zero_start_unknown: bool = False,
    ) -> None:
        self.subtract = subtract
        self.first = first
        self.since = since
        """Unix ns: `KNOWN_START` / `AFTER_SINCE` trust start times at or after this."""
        self.drop_reset = drop_reset
        self.zero_start_unknown = zero_start_unknown
        self.repeats = repeats
        self._numbers = subtract is number_increase
        self.last: dict[Hashable, Last[V]] = {}
        """State by series, for callers that let `delta()` keep it (they bound it themselves)."""
        self.out_of_order = 0
        """Points dropped as `OUT_OF_ORDER` so far, for callers that report drops later (see
        `take_out_of_order`)."""
        self.reason = ""
        """Why the last None result was None (`OUT_OF_ORDER`, `INITIAL` or `RESET`)."""
        self.window_start = 0
        """Start of the window the last non-None result covers: the previous point's time, or
        the start time for a whole value."""

    def begin(self, start: int, time: int, value: V) -> V | None:
        """The output of a series' first point (the caller stores its `Last`): the whole value
        when the `first` policy sends it, else None (`INITIAL`)."""
        first = self.first
        if (
            first is _KEEP
            or (first is _KNOWN_START and 0 < start < time and start >= self.since)
            or (first is _AFTER_SINCE and start >= self.since and start != time)
        ):
            self.window_start = start
            return value
        self.reason = INITIAL
        return None

    def advance(self, last: Last[V], start: int, time: int, value: V) -> V | None:
        """What `value` gained since `last` (updated), the whole value, or None (see `reason`)."""
        previous = last.time
        # nanosecond times are big ints: compare them, never add to them (that allocates)
        if time <= previous and (time < previous or not self.repeats):
            self.reason = OUT_OF_ORDER
            self.out_of_order += 1
            return None
        if start == last.start or (not start and self.zero_start_unknown):
            found: V | None
            if self._numbers:  # `number_increase`, inlined: the call would cost as much
                base = last.value
                found = value - base if value >= base else None  # type: ignore[operator]
            else:
                found = self.subtract(value, last.value)
            if found is not None:
                self.window_start = previous
                last.time = time
                last.value = value
                return found
            if self.drop_reset:
                last.time = time
                last.value = value
                self.reason = RESET
                return None
        last.start = start
        last.time = time
        last.value = value
        return self.begin(start, time, value)

    def delta(self, series: Hashable, start: int, time: int, value: V) -> V | None:
        """`advance` on the state kept in `self.last` (created on a series' first point)."""
        last = self.last.get(series)
        if last is not None:
            return self.advance(last, start, time, value)
        self.last[series] = Last(start, time, value)
        return self.begin(start, time, value)


def take_out_of_order(dropped: Counter[str], *tables: Deltas[Any]) -> Counter[str]:
    """`dropped` with the tables' out-of-order points added under `OUT_OF_ORDER` (if any);
    their counts start again from 0."""
    for table in tables:
        if table.out_of_order:
            dropped[OUT_OF_ORDER] += table.out_of_order
            table.out_of_order = 0
    return dropped


def number_increase(current: float, previous: float) -> float | None:
    """`current - previous`; None when the value went down (a counter reset)."""
    return current - previous if current >= previous else None


def counts_increase(
    current: tuple[float, ...], previous: tuple[float, ...]
) -> tuple[float, ...] | None:
    """Element-wise increase of (count, ...) tuples; None when the lengths differ or the first
    element (the count) went down. Later elements are not checked (sums may go down)."""
    if len(current) != len(previous) or current[0] < previous[0]:
        return None
    return tuple(map(operator.sub, current, previous))
