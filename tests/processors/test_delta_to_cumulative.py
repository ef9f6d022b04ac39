"""The delta_to_cumulative processor, and its round trip through cumulative_to_delta."""

from __future__ import annotations

import asyncio
import math
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
    Exemplar,
    ExponentialHistogramPoint,
    HistogramPoint,
    MetricKind,
    MetricPoints,
    PointValue,
    Temporality,
)
from metricgate.pipeline.host import Host
from metricgate.pipeline.service import Service
from metricgate.processors.cumulative_to_delta import (
    CumulativeToDeltaConfig,
    CumulativeToDeltaProcessor,
)
from metricgate.processors.delta_to_cumulative import (
    DeltaToCumulativeConfig,
    DeltaToCumulativeProcessor,
)
from metricgate.telemetry import SelfMetrics
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


def delta_group(
    points: list[tuple[str, PointValue, int, int]],
    kind: MetricKind = MetricKind.SUM,
    monotonic: bool = True,
    name: str = "requests",
    flags: dict[int, int] | None = None,
) -> MetricPoints:
    """Points as (key, value, start, timestamp) in seconds after T0."""
    m = metric(name, kind=kind, temporality=Temporality.DELTA, monotonic=monotonic)
    out = MetricPoints(m)
    for i, (key, value, start, ts) in enumerate(points):
        out.append(
            INTERNER.intern_series(m, (("k", key),)),
            value,
            T0 + ts * S,
            T0 + start * S if start >= 0 else 0,
            (flags or {}).get(i, 0),
        )
    return out


def processor(**config: Any) -> tuple[DeltaToCumulativeProcessor, Sink]:
    sink = Sink()
    proc = DeltaToCumulativeProcessor(
        "delta_to_cumulative", DeltaToCumulativeConfig.model_validate(config), sink
    )
    return proc, sink


def at(seconds: int) -> int:
    return T0 + seconds * S


async def test_delta_sums_accumulate_from_the_first_start() -> None:
    proc, sink = processor()
    first = delta_group([("a", 1.0, 0, 10), ("b", 5.0, 5, 10)])
    await proc.consume(Batch([first]))
    await proc.consume(Batch([delta_group([("a", 2.0, 10, 20), ("a", 3.0, 20, 30)])]))
    assert sink.points() == [
        ("a", 1.0, at(0), at(10)),
        ("b", 5.0, at(5), at(10)),
        ("a", 3.0, at(0), at(20)),
        ("a", 6.0, at(0), at(30)),
    ]
    out = sink.batches[0].metrics[0]
    m = out.metric
    assert (m.temporality, m.monotonic, m.name, m.kind) == (
        Temporality.CUMULATIVE,
        True,
        "requests",
        MetricKind.SUM,
    )
    assert all(s.metric is m for s in out.series)
    assert first.metric.temporality is Temporality.DELTA  # input untouched
    # cached: the same output objects on every pass
    assert sink.batches[1].metrics[0].metric is m
    assert sink.batches[1].metrics[0].series[0] is out.series[0]


async def test_non_monotonic_sums_and_unknown_start() -> None:
    proc, sink = processor()
    await proc.consume(
        Batch([delta_group([("a", -1.0, -1, 10), ("a", 3.5, -1, 20)], monotonic=False)])
    )
    assert sink.points() == [("a", -1.0, at(10), at(10)), ("a", 2.5, at(10), at(20))]
    assert sink.batches[0].metrics[0].metric.monotonic is False


async def test_out_of_order_and_duplicates_are_dropped_and_counted() -> None:
    proc, sink = processor()
    await proc.consume(
        Batch([delta_group([("a", 1.0, 0, 10), ("a", 1.0, 0, 10), ("a", 1.0, 5, 5)])])
    )
    await proc.consume(Batch([delta_group([("a", 2.0, 10, 20)])]))
    assert [p[1] for p in sink.points()] == [1.0, 3.0]
    assert proc.dropped.counts == {"out_of_order": 2}


async def test_nan_dropped_and_end_of_series_forgets_the_stream() -> None:
    proc, sink = processor()
    nan = math.nan
    await proc.consume(
        Batch(
            [
                delta_group(
                    [("a", 1.0, 0, 10), ("a", nan, 10, 20), ("a", nan, 10, 30), ("a", 4.0, 30, 40)],
                    flags={2: FLAG_NO_RECORDED_VALUE},
                )
            ]
        )
    )
    points = sink.points()
    assert points[0] == ("a", 1.0, at(0), at(10))
    assert math.isnan(float(points[1][1])) and points[1][2:] == (at(0), at(30))
    assert sink.batches[0].metrics[0].flags == [0, FLAG_NO_RECORDED_VALUE, 0]
    assert points[2] == ("a", 4.0, at(30), at(40))  # a new stream
    assert proc.dropped.counts == {"invalid": 1}


def hist(counts: tuple[int, ...], bounds: tuple[float, ...] = (1.0, 5.0), **kw: Any) -> Any:
    return HistogramPoint(sum(counts), float(sum(counts)), bounds, counts, **kw)


async def test_histograms_add_bucket_wise_and_restart_when_bounds_change() -> None:
    proc, sink = processor()
    points: list[tuple[str, PointValue, int, int]] = [
        ("a", hist((1, 0, 2), min=0.5, max=9.0), 0, 10),
        ("a", hist((0, 3, 1), min=0.1, max=7.0), 10, 20),
        ("a", hist((1, 1), bounds=(2.0,)), 20, 30),
    ]
    await proc.consume(Batch([delta_group(points, kind=MetricKind.HISTOGRAM)]))
    assert sink.points() == [
        ("a", hist((1, 0, 2), min=0.5, max=9.0), at(0), at(10)),
        ("a", hist((1, 3, 3), min=0.1, max=9.0), at(0), at(20)),
        ("a", hist((1, 1), bounds=(2.0,)), at(20), at(30)),
    ]


async def test_exponential_histograms_merge_at_the_coarser_scale() -> None:
    proc, sink = processor()

    def exp(scale: int, offset: int, counts: tuple[int, ...]) -> ExponentialHistogramPoint:
        return ExponentialHistogramPoint(
            sum(counts) + 1, 1.0, scale, 1, BucketRange(offset, counts), BucketRange(0, ())
        )

    points: list[tuple[str, PointValue, int, int]] = [
        ("a", exp(1, 2, (1, 2, 3)), 0, 10),  # buckets 2, 3, 4 at scale 1
        ("a", exp(0, 1, (5,)), 10, 20),  # bucket 1 at scale 0
    ]
    await proc.consume(Batch([delta_group(points, kind=MetricKind.EXPONENTIAL_HISTOGRAM)]))
    total = sink.points()[1][1]
    # scale 1 -> 0: 2,3 -> 1 and 4 -> 2
    assert total == ExponentialHistogramPoint(
        13, 2.0, 0, 2, BucketRange(1, (8, 3)), BucketRange(0, ())
    )


async def test_max_streams_drops_new_streams_only() -> None:
    proc, sink = processor(max_streams=2)
    await proc.consume(
        Batch([delta_group([("a", 1.0, 0, 10), ("b", 1.0, 0, 10), ("c", 1.0, 0, 10)])])
    )
    await proc.consume(Batch([delta_group([("a", 1.0, 10, 20), ("c", 1.0, 10, 20)])]))
    assert [(p[0], p[1]) for p in sink.points()] == [("a", 1.0), ("b", 1.0), ("a", 2.0)]
    assert proc.dropped.counts == {"max_streams": 2}


async def test_stale_streams_are_forgotten_on_a_timer() -> None:
    proc, sink = processor(max_stale="40ms")
    host = Host(SelfMetrics())
    await proc.start(host)
    try:
        await proc.consume(Batch([delta_group([("a", 1.0, 0, 10)])]))
        assert len(proc.table.streams) == 1
        assert (
            host.telemetry.registry.get_sample_value(
                "metricgate_processor_active_streams", {"processor": "delta_to_cumulative"}
            )
            == 1
        )
        await wait_until(lambda: not proc.table.streams)  # expired by the timer, no batch
        await proc.consume(Batch([delta_group([("a", 2.0, 10, 20)])]))
        assert sink.points()[-1] == ("a", 2.0, at(10), at(20))
    finally:
        await proc.shutdown()
        await proc.shutdown()  # idempotent


async def test_other_data_passes_unchanged_and_exemplars_follow_their_points() -> None:
    proc, sink = processor()
    cumulative = Batch([delta_group([("a", 1.0, 0, 10)])])
    m = metric("requests")
    cumulative.metrics[0] = MetricPoints(
        m, [INTERNER.intern_series(m, (("k", "a"),))], [1.0], [1], [0], [0]
    )
    await proc.consume(cumulative)
    assert sink.batches[0] is cumulative
    g = delta_group([("a", 1.0, 0, 10), ("a", 1.0, 0, 5), ("a", 1.0, 10, 20)])
    exemplar = (Exemplar(0.5, at(15)),)
    g.add_exemplars(2, exemplar)
    await proc.consume(Batch([g]))
    assert sink.batches[1].metrics[0].exemplars == {1: exemplar}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "{max_stale: soon}",
            "processors.delta_to_cumulative.max_stale: expected a duration like 30s or 5m, "
            "got 'soon'",
        ),
        (
            "{max_streams: -1}",
            "processors.delta_to_cumulative.max_streams: expected greater than or equal to 0, "
            "got -1",
        ),
        (
            "{max_series: 10}",
            "processors.delta_to_cumulative.max_series: unknown key (expected one of: "
            "max_stale, max_streams)",
        ),
    ],
)
def test_config_errors_name_the_key(body: str, message: str) -> None:
    assert message in processor_config_problems("delta_to_cumulative", body)


async def test_in_pipeline() -> None:
    config = load_config_text(
        """
receivers: {inject: {}}
processors: {delta_to_cumulative: {max_stale: 1m}}
exporters: {capture: {}}
service:
  telemetry: {metrics: {address: ""}}
  pipelines: {metrics: {receivers: [inject], processors: [delta_to_cumulative],
    exporters: [capture]}}
""",
        registry_with_capture(),
        {},
    )
    service = Service(config)
    await service.start()
    try:
        inject = InjectReceiver.instances["inject"]
        await inject.push(Batch([delta_group([("a", 2.0, 0, 10)])]))
        await inject.push(Batch([delta_group([("a", 3.0, 10, 20)])]))
        capture = CaptureExporter.instances["capture"]
        await wait_until(lambda: len(capture.batches) >= 2)
        assert [b.metrics[0].values for b in capture.batches] == [[2.0], [5.0]]
        assert capture.batches[1].metrics[0].start_timestamps == [at(0)]
    finally:
        await service.shutdown()


# --- round trip: delta -> cumulative -> delta gives the in-order deltas back ------------------

events = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),
        st.integers(min_value=-2, max_value=5),  # timestamp step; <= 0 is out of order
        st.integers(min_value=0, max_value=1000),  # delta value (monotonic)
        st.booleans(),  # start a new batch before this point
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(events=events)
def test_round_trip_recovers_the_in_order_deltas(events: list[tuple[str, int, int, bool]]) -> None:
    sink = Sink()
    to_delta = CumulativeToDeltaProcessor(
        "cumulative_to_delta", CumulativeToDeltaConfig(initial_value="keep"), sink
    )
    to_cumulative = DeltaToCumulativeProcessor(
        "delta_to_cumulative", DeltaToCumulativeConfig(), to_delta
    )
    last_sent: dict[str, int] = {}
    last_kept: dict[str, int] = {}
    batches: list[list[tuple[str, PointValue, int, int]]] = [[]]
    expected = []
    for key, step, value, new_batch in events:
        if new_batch:
            batches.append([])
        ts = last_sent.get(key, 100) + step
        last_sent[key] = ts
        start = last_kept.get(key, ts - 1)
        batches[-1].append((key, float(value), start, ts))
        if key not in last_kept or ts > last_kept[key]:
            expected.append((key, float(value), at(start), at(ts)))
            last_kept[key] = ts

    async def run() -> None:
        for points in batches:
            if points:
                await to_cumulative.consume(Batch([delta_group(points)]))

    asyncio.run(run())
    assert sink.points() == expected
    for batch in sink.batches:
        assert all(g.metric.temporality is Temporality.DELTA for g in batch.metrics)
