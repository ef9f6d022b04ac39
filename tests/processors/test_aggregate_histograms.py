"""The aggregate processor on histograms: explicit buckets merged bucket-wise, vmrange buckets."""

from __future__ import annotations

import math

import pytest

from metricgate.model import FLAG_NO_RECORDED_VALUE, Batch, MetricKind, MetricPoints, Temporality
from metricgate.model import INTERNER as I
from metricgate.processors.aggregate.processor import input_mode
from tests.support.aggregate import BASE, NS, A, B, G, feed, hist, make, native

LE = (0.1, 1.0)


async def test_histograms_merge_bucket_wise() -> None:
    h = native("h", MetricKind.HISTOGRAM)
    p, sink, clock = make(
        """
        - match: h
          interval: 1m
          without: [k]
          outputs: [total, increase, count_series, count_samples]
        """
    )
    rows = [
        (BASE + 1, {A: hist((1, 0, 0), 0.05, LE), B: hist((0, 2, 0), 1.0, LE)}),
        (BASE + 30, {A: hist((2, 1, 0), 0.7, LE), B: hist((0, 2, 1), 3.0, LE)}),
        (BASE + 45, {A: hist((1, 0, 0), 0.01, LE)}),  # a restarted
    ]
    await feed(p, clock, h, rows)
    await p.flush(BASE + 60.1)
    got = {(name, tuple(labels.items())): (v, st) for name, labels, v, _, st in sink.take()}
    total, start = got[("h:1m_without_k_total", ())]
    assert total.bucket_counts == (2, 1, 1) and total.count == 4  # type: ignore[union-attr]
    assert total.sum == pytest.approx(0.65 + 2.0 + 0.01)  # type: ignore[union-attr]
    assert total.bounds == LE and start == BASE * NS  # type: ignore[union-attr]
    increase, start = got[("h:1m_without_k_increase", ())]
    assert increase == total and start == BASE * NS
    assert got[("h:1m_without_k_count_series", ())][0] == 2.0
    assert got[("h:1m_without_k_count_samples", ())][0] == 5.0
    await p.flush(BASE + 120.1)
    got2 = {name: v for name, _, v, _, _ in sink.take()}
    assert "h:1m_without_k_increase" not in got2  # no samples in the window
    assert got2["h:1m_without_k_total"] == total  # cumulative outputs carry on


async def test_delta_histograms_add_up() -> None:
    h = native("hd", MetricKind.HISTOGRAM, Temporality.DELTA)
    p, sink, clock = make("[{match: hd, interval: 1m, without: [k], outputs: [total]}]")
    rows = [(BASE + 1, {A: hist((1, 0, 0), 0.05, LE)}), (BASE + 2, {B: hist((0, 0, 2), 9, LE)})]
    await feed(p, clock, h, rows)
    await p.flush(BASE + 60.1)
    ((_, _, total, _, _),) = sink.take()
    assert total == hist((1, 0, 2), 9.05, LE)


async def test_vmrange_histogram_bucket_for_gauges_is_cumulative() -> None:
    p, sink, clock = make("[{match: g, interval: 1m, outputs: [histogram_bucket]}]")
    await feed(p, clock, G, [(BASE + 1, {A: 1.0}), (BASE + 2, {A: 1.05}), (BASE + 3, {A: 0.0})])
    await p.flush(BASE + 60.1)
    await feed(p, clock, G, [(BASE + 61, {A: 1.0})])
    await p.flush(BASE + 120.1)
    got = sink.take()
    second = {labels["vmrange"]: v for _, labels, v, ts, _ in got if ts == (BASE + 120) * NS}
    assert second == {
        "8.799e-01...1.000e+00": 2.0,
        "1.000e+00...1.136e+00": 1.0,
        "0...1.000e-09": 1.0,
    }


def test_unsupported_kinds_pass_through() -> None:
    summary = native("s", MetricKind.SUMMARY, Temporality.UNSPECIFIED, False)
    assert input_mode(summary) is None
    assert input_mode(native("e", MetricKind.EXPONENTIAL_HISTOGRAM)) is None


async def test_points_without_recorded_values_are_skipped() -> None:
    h = native("h", MetricKind.HISTOGRAM)
    p, sink, clock = make(
        """
        - {match: h, interval: 1m, outputs: [total]}
        - {match: g, interval: 1m, outputs: [count_samples]}
        """
    )
    await feed(p, clock, h, [(BASE + 1, {A: hist((1, 0, 0), 0.5, LE)})])
    ended = MetricPoints(h)
    ended.append(
        I.intern_series(h, A), hist((0, 0, 0), 0.0, LE), (BASE + 2) * NS, 0, FLAG_NO_RECORDED_VALUE
    )
    gauge = MetricPoints(G)
    gauge.append(I.intern_series(G, A), math.nan, (BASE + 2) * NS, 0, FLAG_NO_RECORDED_VALUE)
    clock.t = BASE + 2.1
    await p.consume(Batch([ended, gauge]))
    await feed(p, clock, h, [(BASE + 3, {A: hist((2, 0, 0), 0.75, LE)})])
    await p.flush(BASE + 60.1)
    got = sink.values()
    assert got == {("h:1m_total", A): hist((1, 0, 0), 0.25, LE)}  # no reset, no spike
