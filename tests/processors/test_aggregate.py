"""The aggregate processor's outputs: values, names, counter semantics (resets, churn, rates)."""

from __future__ import annotations

import math

import pytest

from metricgate.model import INTERNER, Batch, MetricKind, MetricPoints, Temporality
from tests.support.aggregate import BASE, NS, A, B, C, G, feed, make, native, points


async def test_gauge_outputs_over_one_window() -> None:
    p, sink, clock = make(
        """
        - match: g
          interval: 1m
          without: [k]
          outputs: [count_samples, count_series, sum_samples, min, max, avg, last, stddev,
                    stdvar, unique_samples, 'quantiles(0.5, 0.90)']
        """
    )
    samples = {A: [1.0, 5.0, 3.0], B: [2.0, 2.0, 7.0]}
    for i in range(3):
        await feed(p, clock, G, [(BASE + 10 * i + 1, {A: samples[A][i], B: samples[B][i]})])
    await p.flush(BASE + 60.2)
    got = sink.values()
    every = [1.0, 5.0, 3.0, 2.0, 2.0, 7.0]
    mean = sum(every) / 6
    var = sum((x - mean) ** 2 for x in every) / 6
    assert got[("g:1m_without_k_count_samples", ())] == 6
    assert got[("g:1m_without_k_count_series", ())] == 2
    assert got[("g:1m_without_k_sum_samples", ())] == 20
    assert got[("g:1m_without_k_min", ())] == 1
    assert got[("g:1m_without_k_max", ())] == 7
    assert got[("g:1m_without_k_avg", ())] == pytest.approx(mean)
    assert got[("g:1m_without_k_last", ())] == 7  # latest timestamp; b after a in the batch
    assert got[("g:1m_without_k_stdvar", ())] == pytest.approx(var)
    assert got[("g:1m_without_k_stddev", ())] == pytest.approx(math.sqrt(var))
    assert got[("g:1m_without_k_unique_samples", ())] == 5
    # Prometheus quantile_over_time: linear interpolation between closest ranks.
    assert got[("g:1m_without_k_quantiles", (("quantile", "0.5"),))] == 2.5
    assert got[("g:1m_without_k_quantiles", (("quantile", "0.90"),))] == 6.0


async def test_output_names_follow_vmagent() -> None:
    p, sink, clock = make(
        """
        - {match: c_total, interval: 1m, without: [k, instance], outputs: [total]}
        - {match: c_total, interval: 30s, by: [k, job], outputs: [increase, rate_avg]}
        - {match: c_total, interval: 60s, outputs: [count_series]}
        - {match: c_total, interval: 90, outputs: [count_samples]}
        - {match: c_total, interval: 1h, keep_metric_names: true, outputs: [sum_samples]}
        """
    )
    await feed(p, clock, C, [(BASE + 1, {A: 1.0}), (BASE + 2, {A: 2.0})])
    await p.flush(BASE + 3600)
    names = {name for name, *_ in sink.take()}
    assert names == {
        "c_total:1m_without_instance_k_total",
        "c_total:30s_by_job_k_increase",
        "c_total:30s_by_job_k_rate_avg",
        "c_total:60s_count_series",
        "c_total:90s_count_samples",
        "c_total",
    }


async def test_otlp_series_match_and_group_on_their_prometheus_view() -> None:
    p, sink, clock = make(
        """
        - match: 'http_server_requests_total{job="checkout"}'
          interval: 1m
          by: [job]
          outputs: [increase]
        """,
        start=BASE + 60.5,  # by BASE + 200 the startup grace is over: first samples count
    )
    scope = INTERNER.intern_scope("lib", "1.0")
    batch = Batch()
    for instance in ("i-1", "i-2"):
        resource = INTERNER.intern_resource(
            (("service.instance.id", instance), ("service.name", "checkout"))
        )
        metric = INTERNER.intern_metric(
            resource,
            scope,
            "http.server.requests",
            "",
            MetricKind.SUM,
            Temporality.CUMULATIVE,
            True,
        )
        group = MetricPoints(metric)
        group.append(INTERNER.intern_series(metric, (("route", "/"),)), 3.0, (BASE + 200) * NS)
        batch.metrics.append(group)
    clock.t = BASE + 200.5
    await p.consume(batch)
    await p.flush(BASE + 240.1)
    assert sink.values() == {
        ("http_server_requests_total:1m_by_job_increase", (("job", "checkout"),)): 6.0
    }


async def test_counter_resets_and_total_stays_monotonic_across_flushes() -> None:
    p, sink, clock = make(
        "[{match: c_total, interval: 1m, outputs: [total, increase, total_prometheus]}]"
    )
    await feed(p, clock, C, [(BASE + 1, {A: 10.0}), (BASE + 20, {A: 15.0}), (BASE + 40, {A: 3.0})])
    await p.flush(BASE + 60.1)
    first = sink.values()
    # 10 is the baseline (startup: an existing counter); +5, then a reset to 3 counts 3.
    assert first[("c_total:1m_total", A)] == 8
    assert first[("c_total:1m_increase", A)] == 8
    await feed(p, clock, C, [(BASE + 70, {A: 1.0}), (BASE + 80, {A: 6.0})])
    await p.flush(BASE + 120.1)
    second = sink.values()
    assert second[("c_total:1m_increase", A)] == 6  # reset to 1, then +5
    assert second[("c_total:1m_total", A)] == 14
    assert second[("c_total:1m_total_prometheus", A)] == 14
    await p.flush(BASE + 180.1)
    third = sink.values()
    assert third == {("c_total:1m_total", A): 14, ("c_total:1m_total_prometheus", A): 14}


async def test_series_churn_counts_new_series_from_zero_after_the_startup_grace() -> None:
    p, sink, clock = make(
        "[{match: c_total, interval: 1m, without: [k], outputs: [total, total_prometheus]}]"
    )
    await feed(p, clock, C, [(BASE + 1, {A: 100.0}), (BASE + 30, {A: 110.0})])
    await p.flush(BASE + 60.1)
    assert sink.values()[("c_total:1m_without_k_total", ())] == 10
    # 2m later (past the default staleness of 2 x interval) pod "a" is replaced by pod "b".
    await feed(p, clock, C, [(BASE + 150, {B: 4.0}), (BASE + 170, {B: 9.0})])
    await p.flush(BASE + 180.1)
    got = sink.values()
    assert got[("c_total:1m_without_k_total", ())] == 19  # b's first sample counts: 10 + 4 + 5
    assert got[("c_total:1m_without_k_total_prometheus", ())] == 15  # first sample skipped


async def test_ignore_first_sample_interval_zero_counts_every_first_sample() -> None:
    p, sink, clock = make(
        "[{match: c_total, interval: 1m, ignore_first_sample_interval: 0s, outputs: [total]}]"
    )
    await feed(p, clock, C, [(BASE + 1, {A: 123.0})])
    await p.flush(BASE + 60.1)
    assert sink.values() == {("c_total:1m_total", A): 123.0}


async def test_otlp_start_timestamps_mark_new_counters_and_restarts() -> None:
    p, sink, clock = make("[{match: c_total, interval: 1m, outputs: [increase]}]")
    began = int((BASE + 5) * NS)  # after the processor started: a brand-new counter
    clock.t = BASE + 10.1
    await p.consume(points(C, {A: 4.0}, BASE + 10, start=began))
    clock.t = BASE + 20.1
    await p.consume(points(C, {A: 6.0}, BASE + 20, start=began))
    # Same value trend, but a new start timestamp: the producer restarted, 7 is all new.
    clock.t = BASE + 30.1
    await p.consume(points(C, {A: 7.0}, BASE + 30, start=began + 20 * NS))
    await p.flush(BASE + 60.1)
    assert sink.values()[("c_total:1m_increase", A)] == 4 + 2 + 7


async def test_rate_window_values() -> None:
    p, sink, clock = make(
        "[{match: c_total, interval: 1m, without: [k], outputs: [rate_sum, rate_avg]}]"
    )
    await feed(p, clock, C, [(BASE + 0, {A: 0.0, B: 0.0}), (BASE + 30, {A: 30.0, B: 15.0})])
    await p.flush(BASE + 60.05)
    first = sink.values()
    assert first[("c_total:1m_without_k_rate_sum", ())] == pytest.approx(1.5)
    await feed(p, clock, C, [(BASE + 60, {A: 60.0, B: 45.0}), (BASE + 90, {A: 120.0})])
    await p.flush(BASE + 120.05)
    got = sink.values()
    # a: 90 over [30, 90] = 1.5/s; b: 30 over [30, 60] = 1/s.
    assert got[("c_total:1m_without_k_rate_sum", ())] == pytest.approx(2.5)
    assert got[("c_total:1m_without_k_rate_avg", ())] == pytest.approx(1.25)


async def test_delta_sums_contribute_their_values() -> None:
    delta = native("d_total", temporality=Temporality.DELTA)
    p, sink, clock = make("[{match: d_total, interval: 1m, outputs: [total, increase, rate_sum]}]")
    for i in range(3):
        t = BASE + 10 * (i + 1)
        clock.t = t + 0.1
        await p.consume(points(delta, {A: 5.0}, t, start=int((t - 10) * NS)))
    await p.flush(BASE + 60.1)
    got = sink.values()
    assert got[("d_total:1m_total", A)] == 15
    assert got[("d_total:1m_increase", A)] == 15
    assert got[("d_total:1m_rate_sum", A)] == pytest.approx(0.5)  # 15 over [0s, 30s]


async def test_gauges_feed_counter_outputs_with_reset_detection_like_vmagent() -> None:
    p, sink, clock = make("[{match: g, interval: 1m, outputs: [increase]}]")
    await feed(p, clock, G, [(BASE + 1, {A: 5.0}), (BASE + 2, {A: 7.0}), (BASE + 3, {A: 2.0})])
    await p.flush(BASE + 60.1)
    assert sink.values()[("g:1m_increase", A)] == 4
