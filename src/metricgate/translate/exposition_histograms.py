"""Histograms of a replayed page assembled with a few C-level passes instead of a loop per line.

When a page has the shape of the last one (`PageConverter`'s replayed `_Plan`), each histogram
series has its `_bucket`, `_sum` and `_count` lines at the same page indexes as before, so its
layout is fixed: which values are bucket counts in bound order, which one is the total, which the
sum. `HistogramLayout.point(values)` then checks the counts (finite, not negative, cumulative) and
takes the differences over whole tuples.

Invariant: `point` returns exactly what `exposition_parts.histogram_point` returns for the same
lines, or None wherever that function would raise or the layout is unusual (a repeated bound, a
single line, no bucket); the caller then assembles the series the slow way, which raises with the
line.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from operator import itemgetter, le, sub

from metricgate.model import HistogramPoint

__all__ = ["HistogramLayout"]

_INF = math.inf


class HistogramLayout:
    """Where one histogram series' values are on its page (see the module docstring)."""

    __slots__ = ("_checked", "_cumulative", "_sum", "bounds")

    def __init__(
        self,
        bounds: tuple[float, ...],
        checked: Callable[[list[float]], tuple[float, ...]],
        cumulative: Callable[[list[float]], tuple[float, ...]],
        sum_index: int | None,
    ) -> None:
        self.bounds = bounds
        self._checked = checked
        self._cumulative = cumulative
        self._sum = sum_index

    @classmethod
    def build(cls, parts: list[tuple[int, str, float]]) -> HistogramLayout | None:
        """From the series' (page index, role, bound) lines; None for any layout `point` does
        not take."""
        buckets: list[tuple[float, int]] = []
        sum_index = count_index = None
        for index, role, bound in parts:
            if role == "_bucket":
                buckets.append((bound, index))
            elif role == "_sum" and sum_index is None:
                sum_index = index
            elif role == "_count" and count_index is None:
                count_index = index
            else:
                return None
        buckets.sort()
        if not buckets or len({bound for bound, _ in buckets}) != len(buckets):
            return None
        finite = [(bound, index) for bound, index in buckets if bound != _INF]
        infinite = [index for bound, index in buckets if bound == _INF]
        if count_index is not None:
            total = count_index
        elif infinite:
            total = infinite[0]
        elif finite:
            total = finite[-1][1]
        else:
            return None
        cumulative = [index for _, index in finite] + [total]
        checked = [index for _, index in buckets]
        if count_index is not None:
            checked.append(count_index)
        if len(cumulative) < 2 or len(checked) < 2:
            return None
        return cls(
            tuple(bound for bound, _ in finite),
            itemgetter(*checked),
            itemgetter(*cumulative),
            sum_index,
        )

    def point(self, values: list[float]) -> HistogramPoint | None:
        """The series' point from the page's `values`; None if any count is not a finite,
        non-negative number or the buckets are not cumulative."""
        checked = self._checked(values)
        total = sum(checked)  # NaN or an infinity anywhere makes it NaN or infinite
        if not -1.0 < total < _INF or min(checked) < 0.0:
            return None
        counts = self._cumulative(values)
        previous = (0.0, *counts[:-1])
        if not all(map(le, previous, counts)):
            return None
        return HistogramPoint(
            int(counts[-1]),
            None if self._sum is None else values[self._sum],
            self.bounds,
            tuple(map(int, map(sub, counts, previous))),
        )
