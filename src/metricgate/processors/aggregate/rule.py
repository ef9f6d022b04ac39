"""One stream aggregation rule at run time: matching, windows, and per-point updates.

Time: windows are aligned to multiples of the interval since the Unix epoch; exactly one window is
open per rule (`win`, its start). A point's timestamp is trusted when it lies in
[now - interval - staleness_interval, now + 10s]; otherwise the arrival time stands in for it. A
point whose (trusted) timestamp is older than the open window is *late*: with
`ignore_old_samples: true` it is dropped and counted (`too_old`); otherwise it is counted as late
and aggregated into the open window (vmagent's behaviour, which aggregates by arrival time).

Counters (`total*`, `increase*`, `rate_*`) work on per-input deltas: a cumulative input's delta is
the difference to its previous sample, or the new value after a reset (value went down, or the
OTLP start timestamp changed); a delta input's value is its delta; a gauge is treated as a counter,
as vmagent does. A sample not newer than the previous one of its series is skipped for counters
(`out_of_order`). The first sample of a new input series counts from zero (vmagent's `total`) when
we can tell the series is new: its OTLP start timestamp is after this rule started, or the rule has
run longer than `ignore_first_sample_interval` (default `staleness_interval`, as in vmagent; before
that, every existing series looks new). Otherwise it only sets the baseline. `*_prometheus`
outputs never count first samples. Rates divide each input's window increase by the time between
the sample before the window (or its first sample) and its last sample, then sum or average over
inputs.

Invariant: per point, the steady state is a few attribute reads and float operations on an
`Input` and its `Group`; matching, label filtering and naming happen once per input series.
"""

from __future__ import annotations

import random
from collections.abc import Mapping

from metricgate.model import Attributes, HistogramPoint, Series
from metricgate.model.arithmetic import subtract_histograms
from metricgate.processors.aggregate.config import AggregateRuleConfig
from metricgate.processors.aggregate.outputs import (
    COUNTER_OUTPUTS,
    HISTOGRAM_INPUT_OUTPUTS,
    OutputKind,
)
from metricgate.processors.aggregate.state import Group, HistogramSum, Input
from metricgate.processors.aggregate.vmrange import bucket_index
from metricgate.relabel.selector import parse_selector

FUTURE_SKEW_NS = 10_000_000_000
RESERVOIR = 10_000
"""Samples kept per slot and window for `quantiles`; beyond it, a uniform reservoir sample."""

# How an input series' values turn into deltas.
COUNTER = 0  # gauge or monotonic cumulative sum: a decrease is a reset
UPDOWN = 1  # non-monotonic cumulative sum: plain differences
DELTA = 2  # monotonic delta sum
DELTA_UPDOWN = 3  # non-monotonic delta sum
HISTOGRAM = 4  # cumulative explicit-bucket histogram
HISTOGRAM_DELTA = 5


def value_class(mode: int) -> str:
    """The slot class of a mode: monotonic numbers, up-down numbers, or histograms."""
    if mode >= HISTOGRAM:
        return "histogram"
    return "updown" if mode in (UPDOWN, DELTA_UPDOWN) else "counter"


def _restarted(previous_start: int, start: int) -> bool:
    """Did the OTLP start timestamp change (the producer restarted its cumulative series)?"""
    return previous_start != start and previous_start > 0 and start > 0


class Rule:
    """The running state of one `rules[]` entry."""

    def __init__(self, config: AggregateRuleConfig, index: int, now_ns: int) -> None:
        self.config = config
        self.label = config.name or str(index)
        self.keep_input = config.keep_input
        self.selector = parse_selector(config.match) if config.match else None
        self.outputs = config.parsed_outputs()
        self.kinds = frozenset(o.kind for o in self.outputs)
        self.by = frozenset(config.by) if config.by else None
        self.without = frozenset(config.without) if config.without else None
        self.interval_ns = round(config.interval_s * 1e9)
        self.staleness_ns = round(config.staleness_s * 1e9)
        self.first_sample_grace_ns = round(config.ignore_first_sample_s * 1e9)
        self.need_counter = bool(self.kinds & COUNTER_OUTPUTS)
        self.need_rate = bool(self.kinds & {OutputKind.RATE_SUM, OutputKind.RATE_AVG})
        self.need_welford = bool(self.kinds & {OutputKind.STDDEV, OutputKind.STDVAR})
        self.need_samples = OutputKind.QUANTILES in self.kinds
        self.need_unique = OutputKind.UNIQUE_SAMPLES in self.kinds
        self.need_vm = OutputKind.HISTOGRAM_BUCKET in self.kinds
        self.takes_histograms = bool(self.kinds & HISTOGRAM_INPUT_OUTPUTS)
        self.inputs: dict[Series, Input] = {}
        self.groups: dict[tuple[str, Attributes, str], Group] = {}
        self.started_ns = now_ns
        self.win = now_ns // self.interval_ns * self.interval_ns
        self.first_window = True
        # Per-batch context, set by `begin`.
        self.now_ns = now_ns
        self.lo = self.hi = 0
        self.count_first = False
        # Telemetry tallies since the last `take_tallies`.
        self.matched = self.late = self.too_old = self.out_of_order = self.bounds_mismatch = 0

    @property
    def window_end(self) -> int:
        return self.win + self.interval_ns

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Does a series match `match:`? `labels` includes `__name__`."""
        return self.selector is None or self.selector.matches(labels)

    def accepts(self, mode: int) -> bool:
        return mode < HISTOGRAM or self.takes_histograms

    def new_input(self, series: Series, name: str, labels: Attributes, mode: int) -> Input:
        """Make the state of a newly matched series, finding or making its slot."""
        if self.by is not None:
            out_labels = tuple(pair for pair in labels if pair[0] in self.by)
        elif self.without is not None:
            out_labels = tuple(pair for pair in labels if pair[0] not in self.without)
        else:
            out_labels = labels
        key = (name, out_labels, value_class(mode))
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = Group(out_labels, self.win, len(self.outputs))
        found = self.inputs[series] = Input(self, group)
        return found

    def begin(self, now_ns: int) -> None:
        """Set the per-batch context: trusted timestamp range and the first-sample policy."""
        self.now_ns = now_ns
        self.lo = now_ns - self.interval_ns - self.staleness_ns
        self.hi = now_ns + FUTURE_SKEW_NS
        self.count_first = now_ns - self.started_ns >= self.first_sample_grace_ns

    def _admit(self, ts: int) -> bool:
        """Window check for one point; False if it must be dropped as too old."""
        if not self.lo <= ts <= self.hi:
            ts = self.now_ns
        if ts < self.win:
            if self.config.ignore_old_samples:
                self.too_old += 1
                return False
            self.late += 1
        self.matched += 1
        return True

    def add_number(self, inp: Input, v: float, ts: int, st: int, mode: int) -> None:
        """Aggregate one number point of `inp`'s series."""
        if v != v or not self._admit(ts):  # NaN: staleness markers and unrecorded values
            return
        win = self.win
        g = inp.group
        if g.win != win:
            g.start_window(win)
        if inp.win != win:
            inp.win = win
            inp.win_inc = 0.0
            inp.win_ref = -1
            g.nseries += 1
            if self.need_rate:
                if g.touched is None:
                    g.touched = []
                g.touched.append(inp)
        if self.need_counter:
            self._count(inp, g, v, ts, st, mode)
        g.n += 1
        g.sum += v
        if v < g.min:
            g.min = v
        if v > g.max:
            g.max = v
        if ts >= g.last_ts:
            g.last = v
            g.last_ts = ts
        if self.need_welford:
            d = v - g.mean
            g.mean += d / g.n
            g.m2 += d * (v - g.mean)
        if self.need_samples:
            self._sample(g, v)
        if self.need_unique:
            if g.unique is None:
                g.unique = set()
            g.unique.add(v)
        if self.need_vm:
            index = bucket_index(v)
            if index is not None:
                if g.vm is None:
                    g.vm = {}
                g.vm[index] = g.vm.get(index, 0) + 1

    def _count(self, inp: Input, g: Group, v: float, ts: int, st: int, mode: int) -> None:
        if mode >= DELTA:
            if inp.win_ref < 0:
                inp.win_ref = st if st > 0 else (inp.prev_ts or ts)
            if ts > inp.prev_ts:
                inp.prev_ts = ts
            g.total += v
            g.total_prom += v
            g.inc += v
            g.inc_prom += v
            inp.win_inc += v
            inp.win_last = ts
            return
        prev = inp.prev
        if prev is None:
            if inp.win_ref < 0:
                inp.win_ref = ts
            if self.count_first or 0 < self.started_ns <= st:
                g.total += v
                g.inc += v
        elif ts <= inp.prev_ts:
            self.out_of_order += 1
            return
        else:
            if inp.win_ref < 0:
                inp.win_ref = inp.prev_ts
            reset = mode == COUNTER and (v < prev or _restarted(inp.prev_start, st))
            delta = v if reset else v - prev
            g.total += delta
            g.total_prom += delta
            g.inc += delta
            g.inc_prom += delta
            inp.win_inc += delta
        inp.prev = v
        inp.prev_ts = ts
        inp.prev_start = st
        inp.win_last = ts

    def _sample(self, g: Group, v: float) -> None:
        if g.samples is None:
            g.samples = []
        if len(g.samples) < RESERVOIR:
            g.samples.append(v)
        else:
            slot = random.randrange(g.n)
            if slot < RESERVOIR:
                g.samples[slot] = v

    def add_histogram(
        self, inp: Input, p: HistogramPoint | None, ts: int, st: int, mode: int
    ) -> None:
        """Aggregate one explicit-bucket histogram point, bucket-wise (None: no recorded value)."""
        if p is None or not self._admit(ts):
            return
        win = self.win
        g = inp.group
        if g.bounds is None:
            g.bounds = p.bounds
        elif g.bounds is not p.bounds and g.bounds != p.bounds:
            self.bounds_mismatch += 1
            self.matched -= 1
            return
        if g.win != win:
            g.start_window(win)
        if inp.win != win:
            inp.win = win
            g.nseries += 1
        g.n += 1
        if mode == HISTOGRAM_DELTA:
            self._merge(g, p.bucket_counts, p.count, p.sum, first=False, counted=True)
            return
        prev = inp.prev_hist
        if prev is None:
            counted = self.count_first or 0 < self.started_ns <= st
            self._merge(g, p.bucket_counts, p.count, p.sum, first=True, counted=counted)
        elif ts <= inp.prev_ts:
            self.out_of_order += 1
            return
        else:
            gained = None if _restarted(inp.prev_start, st) else subtract_histograms(p, prev)
            if gained is None:  # a reset: the whole point is new
                gained = p
            counts, count, total = gained.bucket_counts, gained.count, gained.sum
            self._merge(g, counts, count, total, first=False, counted=True)
        inp.prev_hist = p
        inp.prev_ts = ts
        inp.prev_start = st

    def _merge(
        self,
        g: Group,
        counts: tuple[int, ...] | list[int],
        count: int,
        total: float | None,
        *,
        first: bool,
        counted: bool,
    ) -> None:
        size = len(g.bounds or ()) + 1
        if g.h_total is None:
            g.h_total = HistogramSum(size)
            g.h_total_prom = HistogramSum(size)
        if g.h_inc is None:
            g.h_inc = HistogramSum(size)
            g.h_inc_prom = HistogramSum(size)
        assert g.h_total_prom is not None and g.h_inc_prom is not None
        if counted:
            g.h_total.add(counts, count, total)
            g.h_inc.add(counts, count, total)
        if not first:
            g.h_total_prom.add(counts, count, total)
            g.h_inc_prom.add(counts, count, total)

    def expire(self, now_ns: int) -> list[Series]:
        """Forget inputs and slots without samples for `staleness_interval`; return the series."""
        cutoff = now_ns - self.staleness_ns - self.interval_ns
        gone = [s for s, inp in self.inputs.items() if inp.win <= cutoff]
        for series in gone:
            del self.inputs[series]
        for key in [k for k, g in self.groups.items() if g.win <= cutoff]:
            del self.groups[key]
        return gone

    def take_tallies(self) -> tuple[int, int, int, int, int]:
        """(matched, late, too_old, out_of_order, bounds_mismatch) since the last call."""
        out = (self.matched, self.late, self.too_old, self.out_of_order, self.bounds_mismatch)
        self.matched = self.late = self.too_old = self.out_of_order = self.bounds_mismatch = 0
        return out
