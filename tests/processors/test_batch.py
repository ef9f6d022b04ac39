"""The batch processor: size and timeout triggers, merging, splitting, flushing, failures."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metricgate.config import load_config_text
from metricgate.errors import QueueFullError
from metricgate.model import INTERNER, Batch, Exemplar, MetricPoints
from metricgate.model.grouping import merge_groups, split_groups
from metricgate.pipeline.host import Host
from metricgate.pipeline.service import Service
from metricgate.processors.batch import BatchConfig, BatchProcessor
from metricgate.telemetry import SelfMetrics
from tests.support.batches import metric
from tests.support.capture import (
    CaptureExporter,
    InjectReceiver,
    processor_config_problems,
    registry_with_capture,
)
from tests.support.poll import wait_until

T0 = 1_700_000_000_000_000_000


class Sink:
    def __init__(self, fail: bool = False) -> None:
        self.batches: list[Batch] = []
        self.fail = fail

    async def consume(self, batch: Batch) -> None:
        if self.fail:
            raise QueueFullError("exporter queue full")
        self.batches.append(batch)


def group(name: str, keys: str, first_value: int = 0) -> MetricPoints:
    m = metric(name)
    out = MetricPoints(m)
    for i, key in enumerate(keys):
        out.append(INTERNER.intern_series(m, (("k", key),)), float(first_value + i), T0)
    return out


def flat(batches: list[Batch]) -> list[tuple[Any, ...]]:
    return [
        (g.metric.name, s.attributes[0][1], g.values[i])
        for b in batches
        for g in b.metrics
        for i, s in enumerate(g.series)
    ]


def processor(sink: Sink, **config: object) -> BatchProcessor:
    return BatchProcessor("batch", BatchConfig.model_validate(config), sink)


async def test_size_trigger_sends_one_merged_batch() -> None:
    sink = Sink()
    proc = processor(sink, send_batch_size=4)
    await proc.consume(Batch([group("a", "xy")]))
    assert not sink.batches and proc.buffered_points == 2  # buffered, already accepted
    await proc.consume(Batch([group("b", "x"), group("a", "zw", 2)]))
    (out,) = sink.batches
    assert [g.metric.name for g in out.metrics] == ["a", "b"]
    assert flat([out]) == [
        ("a", "x", 0),
        ("a", "y", 1),
        ("a", "z", 2),
        ("a", "w", 3),
        ("b", "x", 0),
    ]
    assert proc.buffered_points == 0


async def test_timeout_sends_what_is_buffered() -> None:
    sink = Sink()
    proc = processor(sink, timeout="30ms")
    await proc.start(Host(SelfMetrics()))
    try:
        batch = Batch([group("a", "x")])
        await proc.consume(batch)
        assert not sink.batches
        await wait_until(lambda: bool(sink.batches))
        assert sink.batches == [batch] and sink.batches[0] is batch  # nothing to merge
        await proc.consume(Batch([group("a", "y")]))
        await wait_until(lambda: len(sink.batches) == 2)
    finally:
        await proc.shutdown()


async def test_max_size_cuts_batches_and_keeps_exemplars_with_their_points() -> None:
    sink = Sink()
    proc = processor(sink, send_batch_size=4, send_batch_max_size=5)
    first = group("a", "xyz")
    exemplar = (Exemplar(1.0, T0),)
    first.add_exemplars(2, exemplar)
    second = group("a", "uvw", 3)
    second.add_exemplars(0, exemplar)
    await proc.consume(Batch([first]))
    await proc.consume(Batch([second]))
    assert [b.point_count() for b in sink.batches] == [5, 1]
    assert sink.batches[0].metrics[0].exemplars == {2: exemplar, 3: exemplar}
    assert sink.batches[1].metrics[0].exemplars is None
    assert [v for _, _, v in flat(sink.batches)] == [0, 1, 2, 3, 4, 5]


async def test_timeout_zero_forwards_at_once_and_errors_reach_the_sender() -> None:
    sink = Sink()
    proc = processor(sink, timeout=0, send_batch_size=3, send_batch_max_size=3)
    await proc.consume(Batch([group("a", "abcdefg")]))
    assert [b.point_count() for b in sink.batches] == [3, 3, 1]
    with pytest.raises(QueueFullError):
        await processor(Sink(fail=True), timeout=0).consume(Batch([group("a", "x")]))


async def test_errors_after_buffering_are_logged_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    proc = processor(Sink(fail=True), send_batch_size=2)
    host = Host(SelfMetrics())
    await proc.start(host)
    try:
        await proc.consume(Batch([group("a", "x")]))
        await proc.consume(Batch([group("a", "y")]))  # triggers the send; does not raise
    finally:
        await proc.shutdown()
    assert proc.dropped.counts == {"send_failed": 2}
    assert "could not hand on buffered points" in caplog.text
    value = host.telemetry.registry.get_sample_value(
        "metricgate_processor_dropped_points_total", {"processor": "batch", "reason": "send_failed"}
    )
    assert value == 2


async def test_shutdown_flushes_and_later_batches_pass_straight_through() -> None:
    sink = Sink()
    proc = processor(sink, timeout="1h")
    await proc.start(Host(SelfMetrics()))
    await proc.consume(Batch([group("a", "x")]))
    await proc.shutdown()
    assert flat(sink.batches) == [("a", "x", 0)]
    await proc.shutdown()  # idempotent
    await proc.consume(Batch([group("a", "y")]))
    assert len(sink.batches) == 2


groups = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(min_value=0, max_value=6)),
    max_size=8,
)


@settings(max_examples=150, deadline=None)
@given(parts=groups, max_points=st.integers(min_value=0, max_value=5))
def test_merge_then_split_keeps_every_point_in_order(
    parts: list[tuple[str, int]], max_points: int
) -> None:
    inputs = [group(name, "abcdef"[:size], 10 * i) for i, (name, size) in enumerate(parts)]
    sizes = [len(g.series) for g in inputs]
    merged = merge_groups(inputs)
    assert len({g.metric for g in merged}) == len(merged)
    chunks = split_groups(merged, max_points)
    if max_points:
        assert all(sum(len(g.series) for g in chunk) <= max_points for chunk in chunks)
    for name in "abc":
        expected = [
            (s, v)
            for g in inputs
            if g.metric.name == name
            for s, v in zip(g.series, g.values, strict=True)
        ]
        got = [
            (s, v)
            for chunk in chunks
            for g in chunk
            if g.metric.name == name
            for s, v in zip(g.series, g.values, strict=True)
        ]
        assert got == expected
    assert [len(g.series) for g in inputs] == sizes  # inputs untouched


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "{send_batch_size: 100, send_batch_max_size: 10}",
            "processors.batch: expected send_batch_max_size >= send_batch_size, got 10 < 100",
        ),
        (
            "{timeout: later}",
            "processors.batch.timeout: expected a duration like 30s or 5m, got 'later'",
        ),
        (
            "{send_batch_size: many}",
            "processors.batch.send_batch_size: expected an integer, got 'many'",
        ),
    ],
)
def test_config_errors_name_the_key(body: str, message: str) -> None:
    assert message in processor_config_problems("batch", body)


def test_defaults_are_the_collectors() -> None:
    config = BatchConfig()
    assert (config.send_batch_size, config.timeout, config.send_batch_max_size) == (8192, 0.2, 0)


async def test_in_pipeline() -> None:
    config = load_config_text(
        """
receivers: {inject: {}}
processors: {batch: {send_batch_size: 3, timeout: 10s}}
exporters: {capture: {}}
service:
  telemetry: {metrics: {address: ""}}
  pipelines: {metrics: {receivers: [inject], processors: [batch], exporters: [capture]}}
""",
        registry_with_capture(),
        {},
    )
    service = Service(config)
    await service.start()
    try:
        inject = InjectReceiver.instances["inject"]
        for key in "xyzq":
            await inject.push(Batch([group("a", key)]))
        capture = CaptureExporter.instances["capture"]
        await wait_until(lambda: bool(capture.batches))
        assert [b.point_count() for b in capture.batches] == [3]
    finally:
        await service.shutdown()
    assert [b.point_count() for b in capture.batches] == [3, 1]  # flushed at shutdown
