"""Turning a rule's slots into output points at a flush.

Every output is a `native_prometheus` series (its name is final, its labels complete), under one
empty resource and the `metricgate.aggregate` scope. Kinds, chosen so the Prometheus exporter
renders each sensibly and OTLP consumers read correct semantics:

- `total`, `total_prometheus` of numbers: cumulative sum (monotonic unless the inputs are up-down
  sums), start timestamp = when the slot was made; emitted at every flush while the slot lives.
- every other number output: gauge, emitted only for slots that got samples in the window.
  `quantiles` add a `quantile` label, `histogram_bucket` a `vmrange` label (cumulative bucket
  counts kept until the slot goes stale, as in vmagent).
- outputs of explicit-bucket histogram inputs (merged bucket-wise, same bounds): `total`,
  `total_prometheus` and `histogram_bucket` are cumulative histograms since the slot was made;
  `increase*` are cumulative histograms whose start timestamp is the window start (so they read as
  the window's increase, and OTLP consumers see the restart); `count_series`/`count_samples` are
  gauges.

Invariant: emission only reads slot state; it never changes a slot, so a flush that fails to
deliver loses output points but not aggregation state.
"""

from __future__ import annotations

import math
from typing import Final

from metricgate.model import (
    INTERNER,
    Batch,
    Metric,
    MetricKind,
    MetricPoints,
    PointValue,
    Series,
    Temporality,
)
from metricgate.processors.aggregate.outputs import (
    HISTOGRAM_INPUT_OUTPUTS,
    Output,
    OutputKind,
    output_metric_name,
)
from metricgate.processors.aggregate.rule import Rule
from metricgate.processors.aggregate.state import Group, HistogramSum, quantile
from metricgate.processors.aggregate.vmrange import bucket_label

SCOPE_NAME: Final = "metricgate.aggregate"
_CUMULATIVE_OUTPUTS = frozenset(
    {OutputKind.TOTAL, OutputKind.TOTAL_PROMETHEUS, OutputKind.HISTOGRAM_BUCKET}
)
_K = OutputKind


class Emitter:
    """Collects output points, grouped by output metric, into one batch."""

    def __init__(self) -> None:
        self.groups: dict[Metric, MetricPoints] = {}

    def add(self, series: Series, value: PointValue, timestamp: int, start: int = 0) -> None:
        points = self.groups.get(series.metric)
        if points is None:
            points = self.groups[series.metric] = MetricPoints(series.metric)
        points.append(series, value, timestamp, start)

    def batch(self) -> Batch:
        return Batch(list(self.groups.values()))


class _Names:
    """Output metrics of one rule, made once per (input family, output, value class)."""

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.resource = INTERNER.intern_resource(())
        self.scope = INTERNER.intern_scope(SCOPE_NAME)
        self.metrics: dict[tuple[str, int, str], Metric] = {}

    def metric(self, family: str, index: int, value_class: str) -> Metric:
        key = (family, index, value_class)
        found = self.metrics.get(key)
        if found is None:
            found = self.metrics[key] = self._make(family, self.rule.outputs[index], value_class)
        return found

    def _make(self, family: str, output: Output, value_class: str) -> Metric:
        config = self.rule.config
        if config.keep_metric_names:
            name = family
        else:
            name = output_metric_name(family, config.interval, config.by, config.without, output)
        kind, temporality, monotonic = MetricKind.GAUGE, Temporality.UNSPECIFIED, False
        if value_class == "histogram":
            if output.kind not in (_K.COUNT_SERIES, _K.COUNT_SAMPLES):
                kind, temporality = MetricKind.HISTOGRAM, Temporality.CUMULATIVE
        elif output.kind in (_K.TOTAL, _K.TOTAL_PROMETHEUS):
            kind, temporality = MetricKind.SUM, Temporality.CUMULATIVE
            monotonic = value_class == "counter"
        description = f"{output.name} of {family} every {config.interval} (stream aggregation)"
        return INTERNER.intern_metric(
            self.resource,
            self.scope,
            name,
            "",
            kind,
            temporality,
            monotonic,
            description,
            native_prometheus=True,
        )


class RuleEmitter:
    """Emits the outputs of one rule's slots (see the module docstring for what and when)."""

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.names = _Names(rule)

    def emit(self, out: Emitter, stamp: int) -> None:
        """Emit every slot's outputs for the open window, stamped `stamp` (Unix ns)."""
        rule = self.rule
        for (family, _, value_class), group in rule.groups.items():
            touched = group.win == rule.win
            for index, output in enumerate(rule.outputs):
                if not touched and output.kind not in _CUMULATIVE_OUTPUTS:
                    continue
                if value_class == "histogram":
                    if output.kind in HISTOGRAM_INPUT_OUTPUTS:
                        self._histogram(out, stamp, family, value_class, group, index, output)
                else:
                    self._number(out, stamp, family, value_class, group, index, output)

    def _series(
        self, family: str, value_class: str, group: Group, index: int, extra: str = ""
    ) -> Series:
        """The output series of a slot, made on first use; `extra` is a quantile/vmrange value."""
        output = self.rule.outputs[index]
        cached = group.out[index]
        if not extra:
            if cached is None:
                metric = self.names.metric(family, index, value_class)
                cached = group.out[index] = INTERNER.intern_series(metric, group.labels)
            assert isinstance(cached, Series)
            return cached
        if cached is None:
            cached = group.out[index] = {}
        assert isinstance(cached, dict)
        found: Series | None = cached.get(extra)
        if found is None:
            metric = self.names.metric(family, index, value_class)
            label = "quantile" if output.kind is _K.QUANTILES else "vmrange"
            labels = tuple(sorted((*group.labels, (label, extra))))
            found = cached[extra] = INTERNER.intern_series(metric, labels)
        return found

    def _number(
        self,
        out: Emitter,
        stamp: int,
        family: str,
        value_class: str,
        g: Group,
        index: int,
        output: Output,
    ) -> None:
        kind = output.kind
        value: float | None
        if kind is _K.TOTAL or kind is _K.TOTAL_PROMETHEUS:
            value = g.total if kind is _K.TOTAL else g.total_prom
            series = self._series(family, value_class, g, index)
            out.add(series, value, stamp, g.created)
            return
        if kind is _K.HISTOGRAM_BUCKET:
            for bucket, count in sorted((g.vm or {}).items()):
                series = self._series(family, value_class, g, index, bucket_label(bucket))
                out.add(series, float(count), stamp)
            return
        if kind is _K.QUANTILES:
            if g.samples:
                ordered = sorted(g.samples)
                for text, phi in output.phis:
                    series = self._series(family, value_class, g, index, text)
                    out.add(series, quantile(phi, ordered), stamp)
            return
        value = _window_value(kind, g)
        if value is not None:
            out.add(self._series(family, value_class, g, index), value, stamp)

    def _histogram(
        self,
        out: Emitter,
        stamp: int,
        family: str,
        value_class: str,
        g: Group,
        index: int,
        output: Output,
    ) -> None:
        kind = output.kind
        series = self._series(family, value_class, g, index)
        if kind is _K.COUNT_SERIES or kind is _K.COUNT_SAMPLES:
            out.add(series, float(g.nseries if kind is _K.COUNT_SERIES else g.n), stamp)
            return
        bounds = g.bounds or ()
        merged: HistogramSum | None
        start = g.created
        if kind is _K.TOTAL or kind is _K.HISTOGRAM_BUCKET:
            merged = g.h_total
        elif kind is _K.TOTAL_PROMETHEUS:
            merged = g.h_total_prom
        else:
            merged = g.h_inc if kind is _K.INCREASE else g.h_inc_prom
            start = self.rule.win
        if merged is not None:
            out.add(series, merged.point(bounds), stamp, start)


def _window_value(kind: OutputKind, g: Group) -> float | None:
    """The value of a per-window number output, or None when it has none this window."""
    n = g.n
    if kind is _K.INCREASE:
        return g.inc
    if kind is _K.INCREASE_PROMETHEUS:
        return g.inc_prom
    if kind is _K.COUNT_SERIES:
        return float(g.nseries)
    if kind is _K.RATE_SUM or kind is _K.RATE_AVG:
        rates = [
            inp.win_inc * 1e9 / (inp.win_last - inp.win_ref)
            for inp in g.touched or ()
            if inp.win == g.win and inp.win_ref > 0 and inp.win_last > inp.win_ref
        ]
        if not rates:
            return None
        return math.fsum(rates) / (len(rates) if kind is _K.RATE_AVG else 1)
    if n == 0:
        return None
    if kind is _K.COUNT_SAMPLES:
        return float(n)
    if kind is _K.SUM_SAMPLES:
        return g.sum
    if kind is _K.UNIQUE_SAMPLES:
        return float(len(g.unique or ()))
    if kind is _K.LAST:
        return g.last
    if kind is _K.MIN:
        return g.min
    if kind is _K.MAX:
        return g.max
    if kind is _K.AVG:
        return g.sum / n
    if kind is _K.STDVAR:
        return g.m2 / n
    if kind is _K.STDDEV:
        return math.sqrt(g.m2 / n)
    raise AssertionError(f"unhandled output {kind}")


def take_unchanged(
    rules: list[Rule],
    emitters: list[RuleEmitter],
    previous: list[tuple[Rule, RuleEmitter]],
) -> list[tuple[Rule, RuleEmitter]]:
    """Hot reload: put each of `previous`'s rules (with its open window and inputs) in the place
    of the rule with the same config in `rules`; return the previous rules not taken."""
    free = list(previous)
    for index, rule in enumerate(rules):
        match = next((pair for pair in free if pair[0].config == rule.config), None)
        if match is not None:
            free.remove(match)
            rules[index], emitters[index] = match
    return free
