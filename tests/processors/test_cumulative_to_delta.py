"""The cumulative_to_delta processor: first points, resets, restarts, histograms, selection."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metricgate.config import load_config_text
from metricgate.model import (
    FLAG_NO_RECORDED_VALUE,
    INTERNER,
    Batch,
    BucketRange,
    ExponentialHistogramPoint,
    HistogramPoint,
    MetricKind,
    MetricPoints,
    PointValue,
    Temporality,
)
from metricgate.model.exponential import downscale
from metricgate.pipeline.service import Service
from metricgate.pipeline.snapshots import SnapshotStore, Tracked, config_digest
from metricgate.processors.cumulative_to_delta import (
    CumulativeToDeltaConfig,
    CumulativeToDeltaProcessor,
)
from metricgate.processors.delta_to_cumulative import (
    DeltaToCumulativeConfig,
    DeltaToCumulativeProcessor,
)
from tests.support.batches import metric
from tests.support.capture import (
    CaptureExporter,
    InjectReceiver,
    processor_config_problems,
    registry_with_capture,
)
from tests.support.poll import wait_until
from tests.support.sink import Sink

T0 = 1_700_000_000_000_000_000
S = 1_000_000_000


def at(seconds: int) -> int:
    return T0 + seconds * S


def cumulative(
    points: list[tuple[str, PointValue, int, int]],
    kind: MetricKind = MetricKind.SUM,
    monotonic: bool = True,
    name: str = "requests",
    flags: dict[int, int] | None = None,
) -> Batch:
    """One group; points as (key, value, start, timestamp) in seconds after T0 (start < 0: 0)."""
    m = metric(name, kind=kind, temporality=Temporality.CUMULATIVE, monotonic=monotonic)
    out = MetricPoints(m)
    for i, (key, value, start, ts) in enumerate(points):
        out.append(
            INTERNER.intern_series(m, (("k", key),)),
            value,
            at(ts),
            at(start) if start >= 0 else 0,
            (flags or {}).get(i, 0),
        )
    return Batch([out])


def processor(**config: Any) -> tuple[CumulativeToDeltaProcessor, Sink]:
    sink = Sink()
    proc = CumulativeToDeltaProcessor(
        "cumulative_to_delta", CumulativeToDeltaConfig.model_validate(config), sink
    )
    proc.started_at_ns = at(100)  # as if metricgate started 100 s after T0
    return proc, sink


async def test_auto_drops_first_point_of_a_counter_older_than_the_processor() -> None:
    proc, sink = processor()
    await proc.consume(cumulative([("a", 10.0, 0, 110), ("b", 7.0, -1, 110)]))
    await proc.consume(cumulative([("a", 15.0, 0, 120), ("a", 15.5, 0, 130), ("b", 9.0, -1, 120)]))
    assert sink.points() == [
        ("a", 5.0, at(110), at(120)),
        ("a", 0.5, at(120), at(130)),
        ("b", 2.0, at(110), at(120)),
    ]
    out = sink.batches[0].metrics[0]
    assert out.metric.temporality is Temporality.DELTA and out.metric.monotonic
    assert all(s.metric is out.metric for s in out.series)
    assert proc.dropped.counts == {"initial": 2}


async def test_auto_sends_first_point_of_a_counter_started_while_watching() -> None:
    proc, sink = processor()
    await proc.consume(cumulative([("a", 3.0, 105, 110), ("b", 3.0, 110, 110)]))
    assert sink.points() == [("a", 3.0, at(105), at(110))]  # b: start == time, nothing known


@pytest.mark.parametrize(("mode", "sent"), [("keep", [1.0, 1.0]), ("drop", [1.0])])
async def test_initial_value_keep_and_drop(mode: str, sent: list[float]) -> None:
    proc, sink = processor(initial_value=mode)
    await proc.consume(cumulative([("a", 1.0, 0, 110), ("a", 2.0, 0, 120)]))
    assert [p[1] for p in sink.points()] == sent


async def test_decrease_is_a_reset_and_new_start_a_restart() -> None:
    proc, sink = processor()
    await proc.consume(
        cumulative(
            [
                ("a", 10.0, 0, 110),  # initial: remembered
                ("a", 4.0, 0, 120),  # went down, same start: reset, new base
                ("a", 6.0, 0, 130),  # +2
                ("a", 1.0, 125, 140),  # restarted at 125 (after we started): sent whole
                ("a", 3.0, 125, 150),  # +2
            ]
        )
    )
    assert sink.points() == [
        ("a", 2.0, at(120), at(130)),
        ("a", 1.0, at(125), at(140)),
        ("a", 2.0, at(140), at(150)),
    ]
    assert proc.dropped.counts == {"initial": 1, "reset": 1}


async def test_out_of_order_nan_and_end_of_series() -> None:
    proc, sink = processor(initial_value="keep")
    await proc.consume(
        cumulative(
            [
                ("a", 1.0, 0, 110),
                ("a", 2.0, 0, 105),  # older than the last point
                ("a", math.nan, 0, 120),
                ("a", math.nan, 0, 130),  # flagged: the series ended
                ("a", 5.0, 0, 140),  # a new stream: first point again
            ],
            flags={3: FLAG_NO_RECORDED_VALUE},
        )
    )
    points = sink.points()
    assert points[0] == ("a", 1.0, at(0), at(110))
    assert math.isnan(float(points[1][1])) and points[1][2:] == (at(110), at(130))
    assert points[2] == ("a", 5.0, at(0), at(140))
    assert proc.dropped.counts == {"out_of_order": 1, "invalid": 1}


async def test_other_data_passes_unchanged() -> None:
    proc, sink = processor()
    for batch in (
        cumulative([("a", 1.0, 0, 110)], monotonic=False),
        cumulative([("a", 1.0, 0, 110)], kind=MetricKind.GAUGE),
    ):
        await proc.consume(batch)
        assert sink.batches[-1] is batch
    m = metric("d", temporality=Temporality.DELTA)
    delta = Batch([MetricPoints(m, [INTERNER.intern_series(m, ())], [1.0], [at(1)], [0], [0])])
    await proc.consume(delta)
    assert sink.batches[-1] is delta


async def test_include_and_exclude_select_metrics_exclude_wins() -> None:
    proc, sink = processor(
        initial_value="keep",
        include={"match_type": "regexp", "metrics": ["http_.*"]},
        exclude={"metrics": ["http_debug"]},
    )
    for name in ("http_requests", "http_debug", "other"):
        await proc.consume(cumulative([("a", 1.0, 0, 110)], name=name))
    kinds = [b.metrics[0].metric.temporality for b in sink.batches]
    assert kinds == [Temporality.DELTA, Temporality.CUMULATIVE, Temporality.CUMULATIVE]


def hist(counts: tuple[int, ...], bounds: tuple[float, ...] = (1.0, 5.0), **kw: Any) -> Any:
    return HistogramPoint(sum(counts), float(sum(counts)), bounds, counts, **kw)


async def test_histograms_difference_bucket_wise() -> None:
    proc, sink = processor(initial_value="keep")
    await proc.consume(
        cumulative(
            [
                ("a", hist((1, 0, 2), min=0.5, max=9.0), 0, 110),
                ("a", hist((1, 3, 3), min=0.1, max=9.0), 0, 120),
                ("a", hist((0, 1, 0)), 0, 130),  # went down: reset
                ("a", hist((1, 1), bounds=(2.0,)), 0, 140),  # new bounds
                ("a", hist((2, 1), bounds=(2.0,)), 0, 150),
            ],
            kind=MetricKind.HISTOGRAM,
        )
    )
    assert sink.points() == [
        ("a", hist((1, 0, 2), min=0.5, max=9.0), at(0), at(110)),
        ("a", hist((0, 3, 1)), at(110), at(120)),  # min/max unknown for the interval
        ("a", hist((1, 0), bounds=(2.0,)), at(140), at(150)),
    ]
    assert proc.dropped.counts == {"reset": 1, "bucket_mismatch": 1}


async def test_exponential_histograms_difference_at_the_new_scale() -> None:
    proc, sink = processor(initial_value="drop")

    def exp(scale: int, offset: int, counts: tuple[int, ...]) -> ExponentialHistogramPoint:
        return ExponentialHistogramPoint(
            sum(counts), None, scale, 0, BucketRange(offset, counts), BucketRange(0, ())
        )

    await proc.consume(
        cumulative(
            [("a", exp(1, 2, (1, 2, 3)), 0, 110), ("a", exp(0, 1, (4, 5)), 0, 120)],
            kind=MetricKind.EXPONENTIAL_HISTOGRAM,
        )
    )
    # previous at scale 0: bucket 1 = 1+2, bucket 2 = 3
    assert sink.points() == [
        ("a", exp(0, 1, (1, 2)), at(110), at(120)),
    ]


async def test_output_series_are_cached_and_stale_streams_forgotten() -> None:
    proc, sink = processor(initial_value="keep", max_staleness="1m")
    clock = [0.0]
    proc.table.clock = lambda: clock[0]
    await proc.consume(cumulative([("a", 1.0, 0, 110), ("b", 1.0, 0, 110)]))
    clock[0] = 50.0
    await proc.consume(cumulative([("a", 2.0, 0, 120)]))
    first, second = sink.batches
    assert first.metrics[0].series[0] is second.metrics[0].series[0]
    assert proc.table.sweep(now=100.0) == 1  # b: last seen at 0
    assert set(s.attributes[0][1] for s in proc.table.streams) == {"a"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "{initial_value: first}",
            "processors.cumulative_to_delta.initial_value: expected 'auto', 'keep' or 'drop', "
            "got 'first'",
        ),
        (
            "{include: {match_type: regexp, metrics: ['a[']}}",
            "processors.cumulative_to_delta.include.metrics[0]: invalid regex "
            "'a[': missing closing ]",
        ),
        (
            "{exclude: {match_type: strict}}",
            "processors.cumulative_to_delta.exclude: expected metrics or metric_types",
        ),
        (
            "{max_stale: 1m}",
            "processors.cumulative_to_delta.max_stale: unknown key (expected one of: exclude, "
            "include, initial_value, max_staleness)",
        ),
    ],
)
def test_config_errors_name_the_key(body: str, message: str) -> None:
    assert message in processor_config_problems("cumulative_to_delta", body)


async def test_in_pipeline() -> None:
    config = load_config_text(
        """
receivers: {inject: {}}
processors: {cumulative_to_delta: {initial_value: drop}}
exporters: {capture: {}}
service:
  telemetry: {metrics: {address: ""}}
  pipelines: {metrics: {receivers: [inject], processors: [cumulative_to_delta],
    exporters: [capture]}}
""",
        registry_with_capture(),
        {},
    )
    service = Service(config)
    await service.start()
    try:
        inject = InjectReceiver.instances["inject"]
        await inject.push(cumulative([("a", 2.0, 0, 10)]))
        await inject.push(cumulative([("a", 5.0, 0, 20)]))
        capture = CaptureExporter.instances["capture"]
        await wait_until(lambda: bool(capture.batches))
        assert [b.metrics[0].values for b in capture.batches] == [[3.0]]
        dropped = service.telemetry.registry.get_sample_value(
            "metricgate_processor_dropped_points_total",
            {"processor": "cumulative_to_delta", "reason": "initial"},
        )
        assert dropped == 1
    finally:
        await service.shutdown()


# --- round trip of histograms through delta_to_cumulative and back ---------------------------

bucket_ranges = st.builds(
    BucketRange,
    st.integers(min_value=-6, max_value=6),
    st.lists(st.integers(min_value=0, max_value=4), max_size=4).map(tuple),
)
exponential_points = st.builds(
    lambda scale, zero, positive, negative: ExponentialHistogramPoint(
        zero + sum(positive.counts) + sum(negative.counts),
        None,
        scale,
        zero,
        positive,
        negative,
    ),
    st.integers(min_value=-1, max_value=3),
    st.integers(min_value=0, max_value=3),
    bucket_ranges,
    bucket_ranges,
)
explicit_points = st.lists(st.integers(min_value=0, max_value=9), min_size=3, max_size=3).map(
    lambda counts: hist(tuple(counts))
)


def normalized(value: Any) -> Any:
    """Exponential points as comparable data: buckets as {index: count} without zeros."""
    if not isinstance(value, ExponentialHistogramPoint):
        return value

    def buckets(r: BucketRange) -> dict[int, int]:
        return {r.offset + i: c for i, c in enumerate(r.counts) if c}

    return (
        value.count,
        value.scale,
        value.zero_count,
        buckets(value.positive),
        buckets(value.negative),
    )


@settings(max_examples=100, deadline=None)
@given(
    values=st.lists(exponential_points, min_size=1, max_size=8)
    | st.lists(explicit_points, min_size=1, max_size=8)
)
def test_histograms_round_trip(values: list[Any]) -> None:
    sink = Sink()
    to_delta = CumulativeToDeltaProcessor(
        "cumulative_to_delta", CumulativeToDeltaConfig(initial_value="keep"), sink
    )
    to_cumulative = DeltaToCumulativeProcessor("d2c", DeltaToCumulativeConfig(), to_delta)
    exponential = isinstance(values[0], ExponentialHistogramPoint)
    kind = MetricKind.EXPONENTIAL_HISTOGRAM if exponential else MetricKind.HISTOGRAM
    expected = []
    scale, filled = 99, False
    for i, value in enumerate(values):
        if exponential:
            # An empty point does not coarsen the running total (see model.arithmetic).
            if value.count and not filled:
                scale, filled = value.scale, True
            elif value.count or not filled:
                scale = min(scale, value.scale)
            by = value.scale - scale
            value_at_scale = ExponentialHistogramPoint(
                value.count,
                None,
                scale,
                value.zero_count,
                downscale(value.positive, by),
                downscale(value.negative, by),
            )
            expected.append(normalized(value_at_scale))
        else:
            expected.append(value)
        group = cumulative([("a", value, i, i + 1)], kind=kind).metrics[0]
        delta = MetricPoints(
            INTERNER.intern_metric(
                group.metric.resource, group.metric.scope, "h", "", kind, Temporality.DELTA
            )
        )
        delta.append(INTERNER.intern_series(delta.metric, (("k", "a"),)), value, at(i + 1), at(i))
        asyncio.run(to_cumulative.consume(Batch([delta])))
    assert [normalized(p[1]) for p in sink.points()] == expected


async def test_a_restart_with_a_snapshot_goes_on_from_the_last_point(tmp_path: Path) -> None:
    hist = HistogramPoint(3, 6.0, (1.0, 5.0), (1, 1, 1))
    proc, _ = processor()
    await proc.consume(cumulative([("a", 10.0, 0, 110)]))
    await proc.consume(
        cumulative([("h", hist, 0, 110)], kind=MetricKind.HISTOGRAM, monotonic=False)
    )
    store = SnapshotStore(tmp_path)
    digest = config_digest("cumulative_to_delta", proc.config)
    store.save(Tracked("processor-c2d@metrics", "cumulative_to_delta", digest, proc))

    restarted, sink = processor()
    restarted.started_at_ns = at(500)  # a later start, as after a restart
    store.restore_all([Tracked("processor-c2d@metrics", "cumulative_to_delta", digest, restarted)])
    assert restarted.started_at_ns == at(100)  # counters that started since still trusted
    await restarted.consume(cumulative([("a", 15.0, 0, 600)]))
    later = HistogramPoint(5, 9.0, (1.0, 5.0), (1, 2, 2))
    await restarted.consume(
        cumulative([("h", later, 0, 600)], kind=MetricKind.HISTOGRAM, monotonic=False)
    )
    delta = HistogramPoint(2, 3.0, (1.0, 5.0), (0, 1, 1))
    assert sink.points() == [("a", 5.0, at(110), at(600)), ("h", delta, at(110), at(600))]
