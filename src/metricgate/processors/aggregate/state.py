"""Aggregation state: one `Group` per output label set, one `Input` per (rule, input series).

A `Group` is an aggregation slot: everything the outputs of one rule need for one output series
(per-window statistics, running totals, merged histogram buckets). An `Input` remembers what the
counter outputs need about one input series: its last value (the baseline of the next delta) and
its contribution to the open window.

Invariant: per-window fields belong to the window `win` (a window start in Unix ns); whoever touches
a slot in a newer window calls `start_window` first, so a flush reads a group's window fields only
when `group.win` is the window being flushed. `win == -1` means "never touched".
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from metricgate.model import Attributes, HistogramPoint

if TYPE_CHECKING:
    from metricgate.processors.aggregate.rule import Rule

INF = math.inf


class HistogramSum:
    """Bucket-wise sum of explicit-bucket histogram deltas (all with the same bounds)."""

    __slots__ = ("count", "counts", "sum", "sum_missing")

    def __init__(self, buckets: int) -> None:
        self.counts = [0] * buckets
        self.count = 0
        self.sum = 0.0
        self.sum_missing = False

    def add(self, counts: tuple[int, ...] | list[int], count: int, total: float | None) -> None:
        mine = self.counts
        for i, c in enumerate(counts):
            mine[i] += c
        self.count += count
        if total is None:
            self.sum_missing = True
        else:
            self.sum += total

    def point(self, bounds: tuple[float, ...]) -> HistogramPoint:
        return HistogramPoint(
            self.count, None if self.sum_missing else self.sum, bounds, tuple(self.counts)
        )


class Group:
    """One aggregation slot: the state behind one output label set of one rule."""

    __slots__ = (
        "bounds",
        "created",
        "h_inc",
        "h_inc_prom",
        "h_total",
        "h_total_prom",
        "inc",
        "inc_prom",
        "labels",
        "last",
        "last_ts",
        "m2",
        "max",
        "mean",
        "min",
        "n",
        "nseries",
        "out",
        "samples",
        "sum",
        "total",
        "total_prom",
        "touched",
        "unique",
        "vm",
        "win",
    )

    def __init__(self, labels: Attributes, created: int, outputs: int) -> None:
        self.labels = labels
        self.created = created
        """Start timestamp of the running totals (the window start when the slot was made)."""
        self.out: list[object] = [None] * outputs
        """Output series per output index, made on first emission (a dict for multi-series)."""
        self.win = -1
        self.total = 0.0
        self.total_prom = 0.0
        self.vm: dict[int, int] | None = None
        self.bounds: tuple[float, ...] | None = None
        self.h_total: HistogramSum | None = None
        self.h_total_prom: HistogramSum | None = None
        self.start_window(-1)

    def start_window(self, win: int) -> None:
        """Forget the previous window's statistics and start collecting for `win`."""
        self.win = win
        self.inc = 0.0
        self.inc_prom = 0.0
        self.n = 0
        self.nseries = 0
        self.sum = 0.0
        self.min = INF
        self.max = -INF
        self.last = math.nan
        self.last_ts = -1
        self.mean = 0.0
        self.m2 = 0.0
        self.samples: list[float] | None = None
        self.unique: set[float] | None = None
        self.touched: list[Input] | None = None
        self.h_inc: HistogramSum | None = None
        self.h_inc_prom: HistogramSum | None = None


class Input:
    """What one rule remembers about one input series."""

    __slots__ = (
        "group",
        "prev",
        "prev_hist",
        "prev_start",
        "prev_ts",
        "rule",
        "win",
        "win_inc",
        "win_last",
        "win_ref",
    )

    def __init__(self, rule: Rule, group: Group) -> None:
        self.rule = rule
        self.group = group
        self.prev: float | None = None
        """Last cumulative value (the next delta's baseline); None before the first sample."""
        self.prev_hist: HistogramPoint | None = None
        """The same for histogram inputs."""
        self.prev_ts = 0
        self.prev_start = 0
        self.win = -1
        self.win_inc = 0.0
        """Increase seen in window `win`, first samples excluded (for rates)."""
        self.win_ref = 0
        """Timestamp the window's increase is measured from (the sample before it, if any)."""
        self.win_last = 0


def quantile(phi: float, values: list[float]) -> float:
    """Prometheus' `quantile_over_time` estimate: linear interpolation between closest ranks.

    `values` must be sorted ascending and non-empty.
    """
    rank = phi * (len(values) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(values) - 1)
    weight = rank - low
    return values[low] * (1 - weight) + values[high] * weight
