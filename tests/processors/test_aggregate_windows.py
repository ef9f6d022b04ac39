"""The aggregate processor's windows, shutdown, input forwarding, late points and staleness."""

from __future__ import annotations

import pytest

from metricgate.errors import QueueFullError
from tests.support.aggregate import BASE, NS, A, B, C, G, feed, make, points


async def test_flushes_are_aligned_to_the_interval_and_stamped_with_the_window_end() -> None:
    p, sink, clock = make("[{match: g, interval: 1m, outputs: [count_samples]}]", BASE + 37)
    await feed(p, clock, G, [(BASE + 38, {A: 1.0})])
    await p.flush(BASE + 59.9)
    assert sink.take() == []
    await p.flush(BASE + 60.3)
    (point,) = sink.take()
    assert point[3] == (BASE + 60) * NS
    # A batch arriving after the window end flushes the window first.
    await feed(p, clock, G, [(BASE + 61, {A: 1.0}), (BASE + 121, {A: 1.0})])
    (point,) = sink.take()
    assert (point[2], point[3]) == (1.0, (BASE + 120) * NS)


async def test_hourly_windows_align_to_the_hour() -> None:
    hour = 1_699_999_200  # a multiple of 3600
    p, sink, clock = make("[{match: g, interval: 1h, outputs: [max]}]", hour + 1234)
    await feed(p, clock, G, [(hour + 1235, {A: 3.0})])
    await p.flush(hour + 3599)
    assert sink.take() == []
    await p.flush(hour + 3600)
    assert [pt[3] for pt in sink.take()] == [(hour + 3600) * NS]


async def test_flush_on_shutdown_emits_the_partial_windows() -> None:
    p, sink, clock = make("[{match: g, interval: 1m, outputs: [count_samples]}]")
    await feed(p, clock, G, [(BASE + 10, {A: 1.0}), (BASE + 70, {A: 1.0}), (BASE + 80, {A: 1.0})])
    clock.t = BASE + 90
    await p.shutdown()
    await p.shutdown()  # idempotent
    got = [(v, ts) for _, _, v, ts, _ in sink.take()]
    assert got == [(1.0, (BASE + 60) * NS), (2.0, (BASE + 90) * NS)]


async def test_without_flush_on_shutdown_the_partial_windows_are_dropped() -> None:
    p, sink, clock = make(
        "[{match: g, interval: 1m, flush_on_shutdown: false, outputs: [count_samples]}]"
    )
    await feed(p, clock, G, [(BASE + 10, {A: 1.0}), (BASE + 70, {A: 1.0}), (BASE + 130, {A: 1.0})])
    clock.t = BASE + 140
    await p.shutdown()
    assert [(v, ts) for _, _, v, ts, _ in sink.take()] == [(1.0, (BASE + 120) * NS)]


async def test_matched_input_is_dropped_unless_keep_input() -> None:
    p, sink, clock = make("[{match: 'g{k=\"a\"}', interval: 1m, outputs: [max]}]")
    clock.t = BASE + 1
    both = points(G, {A: 1.0, B: 2.0}, BASE + 1)
    await p.consume(both)
    (forwarded,) = sink.batches
    assert [dict(s.attributes) for s in forwarded.metrics[0].series] == [{"k": "b"}]
    sink.batches.clear()
    other = points(C, {A: 1.0}, BASE + 1)
    await p.consume(other)
    assert sink.batches == [other]  # untouched batches pass as the same object

    kept, sink2, clock2 = make("[{match: g, interval: 1m, keep_input: true, outputs: [max]}]")
    clock2.t = BASE + 1
    await kept.consume(both)
    assert sink2.batches == [both]


async def test_a_batch_refused_downstream_is_not_aggregated_so_its_retry_counts_once() -> None:
    p, sink, clock = make("[{match: 'g{k=\"a\"}', interval: 1m, outputs: [count_samples]}]")
    clock.t = BASE + 1
    batch = points(G, {A: 1.0, B: 2.0}, BASE + 1)
    sink.refuse = 1
    with pytest.raises(QueueFullError):
        await p.consume(batch)
    await p.consume(batch)  # the client's retry
    await p.flush(BASE + 60.1)
    assert sink.values()[("g:1m_count_samples", A)] == 1


async def test_a_series_matching_two_rules_feeds_both() -> None:
    p, sink, clock = make(
        """
        - {match: g, interval: 1m, outputs: [max], keep_input: true}
        - {match: '{__name__=~"g|h"}', interval: 1m, without: [k], outputs: [count_samples]}
        """
    )
    await feed(p, clock, G, [(BASE + 1, {A: 4.0, B: 9.0})])
    assert sink.batches == []  # the second rule drops what it matched
    await p.flush(BASE + 60.1)
    assert sink.values() == {
        ("g:1m_max", A): 4.0,
        ("g:1m_max", B): 9.0,
        ("g:1m_without_k_count_samples", ()): 2.0,
    }


@pytest.mark.parametrize(("ignore", "late_counted"), [("false", 1.0), ("true", None)])
async def test_late_points_go_into_the_open_window_or_are_dropped(
    ignore: str, late_counted: float | None
) -> None:
    p, sink, clock = make(
        f"[{{match: g, interval: 1m, outputs: [count_samples], ignore_old_samples: {ignore}}}]"
    )
    await p.flush(BASE + 60.1)  # the open window is now [60, 120)
    clock.t = BASE + 61
    await p.consume(points(G, {A: 1.0}, BASE + 59))  # late
    await p.consume(points(G, {B: 1.0}, BASE + 1e6))  # absurd timestamp: arrival time stands
    await p.flush(BASE + 120.1)
    got = sink.values()
    assert got[("g:1m_count_samples", B)] == 1.0
    assert got.get(("g:1m_count_samples", A)) == late_counted


async def test_out_of_order_counter_samples_are_skipped() -> None:
    p, sink, clock = make("[{match: c_total, interval: 1m, outputs: [increase]}]")
    await feed(p, clock, C, [(BASE + 10, {A: 5.0}), (BASE + 30, {A: 9.0}), (BASE + 20, {A: 7.0})])
    await p.flush(BASE + 60.1)
    assert sink.values()[("c_total:1m_increase", A)] == 4


async def test_input_state_and_slots_expire_after_the_staleness_interval() -> None:
    p, sink, clock = make(
        "[{match: c_total, interval: 1m, staleness_interval: 2m, outputs: [total]}]",
        start=BASE - 299.5,  # past the startup grace: first samples count from zero
    )
    await feed(p, clock, C, [(BASE + 1, {A: 5.0})])
    await p.flush(BASE + 60.1)
    assert sink.values() == {("c_total:1m_total", A): 5.0}
    for t in (120, 180):
        await p.flush(BASE + t + 0.1)
        assert sink.values() == {("c_total:1m_total", A): 5.0}
    await p.flush(BASE + 240.1)  # last sample at 1s; window [0, 60) ended 180s ago
    assert sink.values() == {}
    assert not p.rules[0].inputs and not p.rules[0].groups
    await feed(p, clock, C, [(BASE + 241, {A: 7.0})])  # back as a new series
    await p.flush(BASE + 300.1)
    assert sink.values() == {("c_total:1m_total", A): 7.0}
