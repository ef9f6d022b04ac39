"""The cardinality_limit processor: caps, sticky verdicts, overflow totals, drop mode, windows."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from metricgate.model import (
    INTERNER,
    Batch,
    HistogramPoint,
    Metric,
    MetricKind,
    MetricPoints,
    PointValue,
    Series,
    Temporality,
    sorted_attributes,
)
from metricgate.model.caches import release_caches
from metricgate.pipeline.host import Host
from metricgate.processors.cardinality_limit import CardinalityLimitConfig, CardinalityLimiter
from metricgate.telemetry.metrics import SelfMetrics
from metricgate.translate.series import PrometheusTranslator
from tests.support.batches import metric
from tests.support.poll import wait_until
from tests.support.sink import Sink as BaseSink

OVERFLOW = (("otel.metric.overflow", True),)
T0 = 1_700_000_000_000_000_000


class Sink(BaseSink):
    """The next consumer: records what the limiter passes on."""

    def last(self) -> dict[Series, PointValue]:
        """Series -> value of the last batch."""
        return {
            s: v for g in self.batches[-1].metrics for s, v in zip(g.series, g.values, strict=True)
        }


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@asynccontextmanager
async def limiter(
    clock: Clock | None = None, **config: Any
) -> AsyncIterator[tuple[CardinalityLimiter, Sink, SelfMetrics]]:
    sink, telemetry = Sink(), SelfMetrics()
    processor = CardinalityLimiter(
        "cardinality_limit",
        CardinalityLimitConfig.model_validate(config),
        sink,
        clock=clock or Clock(),
    )
    await processor.start(Host(telemetry))
    try:
        yield processor, sink, telemetry
    finally:
        await processor.shutdown()


def series(m: Metric, **attributes: Any) -> Series:
    return INTERNER.intern_series(m, sorted_attributes(attributes))


def batch(m: Metric, points: Iterable[tuple[Series, PointValue]], ts: int = T0) -> Batch:
    group = MetricPoints(m)
    for one, value in points:
        group.append(one, value, ts, T0 - 10**9)
    return Batch([group])


def users(m: Metric, count: int, start: int = 0, **extra: Any) -> list[Series]:
    return [series(m, user_id=f"u{i}", **extra) for i in range(start, start + count)]


def sample(telemetry: SelfMetrics, name: str, **labels: str) -> float:
    return telemetry.registry.get_sample_value(name, labels) or 0.0


async def test_flood_passes_exactly_the_cap_and_existing_series_keep_updating() -> None:
    m = metric("flood_requests", temporality=Temporality.DELTA)
    flood = users(m, 10_000)
    async with limiter(max_series_per_metric=100) as (processor, sink, telemetry):
        await processor.consume(batch(m, ((s, 1.0) for s in flood)))
        passed = sink.last()
        assert set(passed) == {*flood[:100], series(m, **dict(OVERFLOW))}
        await processor.consume(batch(m, ((s, 5.0) for s in reversed(flood))))
        again = sink.last()
        assert {s for s in again if s.attributes != OVERFLOW} == set(flood[:100])
        assert all(again[s] == 5.0 for s in flood[:100])  # existing series keep updating
        assert processor.tracker.admitted_total == 100
        assert (
            sample(
                telemetry,
                "metricgate_cardinality_refused_series_total",
                processor="cardinality_limit",
                metric="flood_requests",
                reason="max_series_per_metric",
            )
            == 9_900
        )  # each refused series counted once, not once per point


async def test_a_memory_release_forgets_refused_series_but_never_admitted_ones() -> None:
    m = metric("flood_requests", temporality=Temporality.DELTA)
    flood = users(m, 1_000)
    async with limiter(max_series_per_metric=100) as (processor, sink, _):
        await processor.consume(batch(m, ((s, 1.0) for s in flood)))
        tracker = processor.tracker
        assert (tracker.admitted_total, tracker.refused_total, len(tracker)) == (100, 900, 900)
        assert release_caches() >= 900  # what the memory limiter does under pressure
        assert (tracker.admitted_total, tracker.refused_total, len(tracker)) == (100, 0, 0)
        assert tracker.metrics["flood_requests"].refused == 0
        await processor.consume(batch(m, ((s, 2.0) for s in reversed(flood))))
        again = sink.last()
        # decided again: still refused (the cap is full), the admitted ones still pass
        assert {s for s in again if s.attributes != OVERFLOW} == set(flood[:100])
        assert tracker.refused_total == 900


async def test_delta_overflow_adds_up_the_folded_points() -> None:
    m = metric("delta_requests", temporality=Temporality.DELTA)
    flood = users(m, 1_000)
    async with limiter(max_series_per_metric=100) as (processor, sink, telemetry):
        for round_ in range(3):
            await processor.consume(batch(m, ((s, float(round_ + 1)) for s in flood)))
            passed = sink.last()
            assert passed[series(m, **dict(OVERFLOW))] == 900 * (round_ + 1)
            assert sum(v for v in passed.values() if isinstance(v, float)) == 1_000 * (
                round_ + 1
            )  # nothing lost
        assert (
            sample(
                telemetry,
                "metricgate_cardinality_folded_points_total",
                processor="cardinality_limit",
                metric="delta_requests",
            )
            == 2_700
        )


async def test_cumulative_overflow_counter_is_monotonic_and_sums_the_folded_series() -> None:
    m = metric("cumulative_requests")
    kept, c, d, e = (series(m, user_id=u) for u in ("kept", "c", "d", "e"))
    rounds: list[dict[Series, float]] = [
        {kept: 1.0, c: 10.0, d: 1.0},
        {kept: 2.0, c: 20.0, d: 2.0, e: 100.0},  # e appears: its whole value counts
        {kept: 3.0, c: 5.0, d: 3.0, e: 100.0},  # c restarted: its increase is 5
        {kept: 4.0, c: 15.0, d: 4.0, e: 130.0},
    ]
    overflow = series(m, **dict(OVERFLOW))
    seen: list[float] = []
    async with limiter(max_series_per_metric=1) as (processor, sink, _):
        for values in rounds:
            await processor.consume(batch(m, values.items()))
            seen.append(float(sink.last()[overflow]))  # type: ignore[arg-type]
    assert seen == [11, 122, 128, 169]
    assert seen == sorted(seen)
    assert seen[1] == 20 + 2 + 100  # no reset yet: exactly the sum of the folded series


async def test_cumulative_histogram_overflow_is_bucket_wise() -> None:
    m = metric("latency", kind=MetricKind.HISTOGRAM)
    bounds = (0.1, 1.0)
    a, b, c = (series(m, user_id=u) for u in "abc")

    def h(*buckets: int) -> HistogramPoint:
        return HistogramPoint(sum(buckets), float(sum(buckets)), bounds, buckets)

    async with limiter(max_series_per_metric=1) as (processor, sink, _):
        await processor.consume(batch(m, [(a, h(1, 1, 1)), (b, h(1, 0, 0)), (c, h(0, 2, 0))]))
        await processor.consume(batch(m, [(a, h(2, 2, 2)), (b, h(3, 0, 1)), (c, h(0, 2, 0))]))
        total = sink.last()[series(m, **dict(OVERFLOW))]
    assert isinstance(total, HistogramPoint)
    assert total.bucket_counts == (3, 2, 1)
    assert total.count == 6 and total.bounds == bounds


async def test_gauge_overflow_carries_the_latest_value() -> None:
    m = metric("queue_depth", kind=MetricKind.GAUGE)
    group = MetricPoints(m)
    group.append(series(m, user_id="kept"), 1.0, T0)
    group.append(series(m, user_id="x"), 7.0, T0 + 2)
    group.append(series(m, user_id="y"), 3.0, T0 + 1)
    async with limiter(max_series_per_metric=1) as (processor, sink, _):
        await processor.consume(Batch([group]))
        assert sink.last()[series(m, **dict(OVERFLOW))] == 7.0


async def test_drop_mode_drops_and_counts_points_and_series() -> None:
    m = metric("dropped_requests", temporality=Temporality.DELTA)
    flood = users(m, 500)
    async with limiter(max_series_per_metric=50, on_limit="drop") as (processor, sink, telemetry):
        for _ in range(2):
            await processor.consume(batch(m, ((s, 1.0) for s in flood)))
            assert set(sink.last()) == set(flood[:50])
        dropped = sample(
            telemetry,
            "metricgate_processor_dropped_points_total",
            processor="cardinality_limit",
            reason="cardinality_limit",
        )
        refused = sample(
            telemetry,
            "metricgate_cardinality_refused_series_total",
            processor="cardinality_limit",
            metric="dropped_requests",
            reason="max_series_per_metric",
        )
    assert (dropped, refused) == (900, 450)


async def test_per_label_caps_each_tenant_independently() -> None:
    m = metric("tenant_requests", temporality=Temporality.DELTA)
    noisy = users(m, 50, tenant="noisy")
    quiet = users(m, 5, tenant="quiet")
    unlabelled = users(m, 20, start=100)
    config: dict[str, Any] = {
        "per_label": {"label": "tenant", "max_series": 10},
        "on_limit": "drop",
    }
    async with limiter(**config) as (processor, sink, telemetry):
        await processor.consume(batch(m, ((s, 1.0) for s in [*noisy, *quiet, *unlabelled])))
        assert set(sink.last()) == {*noisy[:10], *quiet, *unlabelled}
        assert (
            sample(
                telemetry,
                "metricgate_cardinality_refused_series_total",
                processor="cardinality_limit",
                metric="tenant_requests",
                reason="per_label:tenant",
            )
            == 40
        )


async def test_per_label_reads_resource_attributes_too() -> None:
    resource = INTERNER.intern_resource(sorted_attributes({"tenant": "acme"}))
    scope = INTERNER.intern_scope("s")
    m = INTERNER.intern_metric(resource, scope, "r", "", MetricKind.GAUGE)
    config: dict[str, Any] = {
        "per_label": [{"label": "tenant", "max_series": 3}],
        "on_limit": "drop",
    }
    async with limiter(**config) as (processor, sink, _):
        await processor.consume(batch(m, ((s, 1.0) for s in users(m, 10))))
        assert len(sink.last()) == 3


async def test_global_cap_counts_series_across_metrics() -> None:
    metrics = [metric(f"global_{i}", temporality=Temporality.DELTA) for i in range(3)]
    async with limiter(max_series=30, on_limit="drop") as (processor, sink, telemetry):
        for m in metrics:
            await processor.consume(batch(m, ((s, 1.0) for s in users(m, 20))))
        passed = sum(len(b.metrics[0]) for b in sink.batches)
        assert passed == 30
        assert processor.tracker.admitted_total == 30
        assert (
            sample(
                telemetry,
                "metricgate_cardinality_refused_series_total",
                processor="cardinality_limit",
                metric="global_1",
                reason="max_series",
            )
            == 10
        )


async def test_sliding_window_lets_new_series_in_after_old_ones_age_out() -> None:
    m = metric("churn", temporality=Temporality.DELTA)
    old, new = users(m, 10), users(m, 10, start=10)
    clock = Clock()
    async with limiter(clock, max_series_per_metric=10, window=0.2, on_limit="drop") as (
        processor,
        sink,
        _,
    ):
        await processor.consume(batch(m, ((s, 1.0) for s in old)))
        clock.now += 0.1
        await processor.consume(batch(m, ((s, 1.0) for s in [*old[:5], *new])))
        assert set(sink.last()) == set(old[:5])  # full: new ones refused, old keep flowing
        for _ in range(4):  # old[:5] stay active; old[5:] and the refused ones go quiet
            clock.now += 0.15
            await processor.consume(batch(m, ((s, 1.0) for s in old[:5])))
            assert set(sink.last()) == set(old[:5])
        assert processor.tracker.admitted_total == 5
        await processor.consume(batch(m, ((s, 1.0) for s in [*old[:5], *new])))
        assert set(sink.last()) == {*old[:5], *new[:5]}


async def test_fixed_window_resets_every_count_at_the_boundary() -> None:
    m = metric("fixed", temporality=Temporality.DELTA)
    first, second = users(m, 4), users(m, 4, start=4)
    clock = Clock()
    config: dict[str, Any] = {
        "max_series_per_metric": 4,
        "window": 1,
        "window_type": "fixed",
        "on_limit": "drop",
    }
    async with limiter(clock, **config) as (processor, sink, _):
        await processor.consume(batch(m, ((s, 1.0) for s in first)))
        clock.now += 0.9
        await processor.consume(batch(m, ((s, 1.0) for s in second)))
        assert not sink.batches[1:]  # all refused: nothing handed on
        clock.now += 0.2
        await processor.consume(batch(m, ((s, 1.0) for s in [*second, *first])))
        assert set(sink.last()) == set(second)


async def test_an_all_admitted_batch_is_handed_on_unchanged() -> None:
    m = metric("steady")
    async with limiter() as (processor, sink, _):
        for _ in range(2):
            given = batch(m, ((s, 1.0) for s in users(m, 100)))
            await processor.consume(given)
            assert sink.batches[-1] is given


async def test_an_upstream_overflow_series_folds_into_ours() -> None:
    m = metric("sdk_overflow", temporality=Temporality.DELTA)
    upstream = series(m, **dict(OVERFLOW))
    async with limiter(max_series_per_metric=1) as (processor, sink, _):
        await processor.consume(batch(m, [(series(m, user_id="a"), 1.0), (upstream, 4.0)]))
        await processor.consume(batch(m, [(series(m, user_id="b"), 2.0), (upstream, 4.0)]))
        assert sink.last() == {upstream: 6.0}


async def test_native_prometheus_overflow_keeps_job_and_instance() -> None:
    resource = INTERNER.intern_resource(())
    scope = INTERNER.intern_scope("")
    m = INTERNER.intern_metric(
        resource,
        scope,
        "up_total",
        "",
        MetricKind.SUM,
        Temporality.CUMULATIVE,
        True,
        native_prometheus=True,
    )
    points = [(series(m, job="api", instance=f"pod{i % 2}", path=f"/p{i}"), 1.0) for i in range(6)]
    async with limiter(max_series_per_metric=2) as (processor, sink, _):
        await processor.consume(batch(m, points))
        overflow = {
            s.attributes: v for s, v in sink.last().items() if "path" not in dict(s.attributes)
        }
    assert overflow == {
        (("instance", "pod0"), ("job", "api"), ("otel_metric_overflow", "true")): 2.0,
        (("instance", "pod1"), ("job", "api"), ("otel_metric_overflow", "true")): 2.0,
    }


async def test_nan_and_stale_points_do_not_poison_the_overflow_total() -> None:
    m = metric("nan_total", temporality=Temporality.DELTA)
    group = MetricPoints(m)
    group.append(series(m, user_id="kept"), 1.0, T0)
    group.append(series(m, user_id="x"), math.nan, T0)
    group.append(series(m, user_id="y"), math.nan, T0, flags=1)
    group.append(series(m, user_id="z"), 2.0, T0)
    async with limiter(max_series_per_metric=1) as (processor, sink, telemetry):
        await processor.consume(Batch([group]))
        assert sink.last()[series(m, **dict(OVERFLOW))] == 2.0
        assert (
            sample(
                telemetry,
                "metricgate_processor_dropped_points_total",
                processor="cardinality_limit",
                reason="overflow_unmergeable",
            )
            == 1
        )


async def test_gauges_report_active_series_top_metrics_and_limits() -> None:
    big, small = metric("big", kind=MetricKind.GAUGE), metric("small", kind=MetricKind.GAUGE)
    config: dict[str, Any] = {
        "max_series_per_metric": 50,
        "telemetry_metrics": 1,
        "per_label": {"label": "t", "max_series": 7},
    }
    async with limiter(**config) as (processor, _, telemetry):
        await processor.consume(batch(big, ((s, 1.0) for s in users(big, 60))))
        await processor.consume(batch(small, ((s, 1.0) for s in users(small, 3))))
        labels = {"processor": "cardinality_limit"}
        assert sample(telemetry, "metricgate_processor_active_series", **labels) == 53
        assert sample(telemetry, "metricgate_cardinality_series", metric="big", **labels) == 50
        assert (
            telemetry.registry.get_sample_value(
                "metricgate_cardinality_series", {"metric": "small", **labels}
            )
            is None
        )  # only the top telemetry_metrics metrics get a series
        assert sample(telemetry, "metricgate_cardinality_limit", scope="per_label:t", **labels) == 7
        assert (
            sample(
                telemetry, "metricgate_cardinality_limit", scope="max_series_per_metric", **labels
            )
            == 50
        )


async def test_a_refused_series_stays_refused_while_active_even_when_room_frees_up() -> None:
    m = metric("sticky", temporality=Temporality.DELTA)
    a, b, c, d = (series(m, user_id=u) for u in "abcd")
    clock = Clock()
    async with limiter(clock, max_series_per_metric=2, window=1, on_limit="drop") as (
        processor,
        sink,
        _,
    ):
        for advance, sent in ((0.0, [a, b]), (0.5, [c]), (0.55, [c]), (0.85, [c])):
            clock.now += advance
            await processor.consume(batch(m, ((s, 1.0) for s in sent)))
        clock.now += 0.15  # a and b went quiet two rotations ago: they expire now
        await processor.consume(batch(m, ((s, 1.0) for s in (c, d))))
        assert set(sink.last()) == {d}  # room for two, but c was refused and stays refused
        assert processor.tracker.admitted_total == 1


async def test_the_sweeper_expires_series_without_traffic() -> None:
    m = metric("idle", temporality=Temporality.DELTA)
    clock = Clock()
    async with limiter(clock, window=0.2) as (processor, _, telemetry):
        await processor.consume(batch(m, ((s, 1.0) for s in users(m, 50))))
        clock.now += 0.5  # more than two windows, and no batch: the timer must notice
        await wait_until(lambda: processor.tracker.admitted_total == 0)
        assert not processor.tracker.metrics
        labels = {"processor": "cardinality_limit"}
        assert sample(telemetry, "metricgate_processor_active_series", **labels) == 0


def test_the_otlp_overflow_series_renders_as_otel_metric_overflow_in_prometheus() -> None:
    view = PrometheusTranslator().series(series(metric("rendered"), **dict(OVERFLOW)))
    assert dict(view.labels)["otel_metric_overflow"] == "true"
