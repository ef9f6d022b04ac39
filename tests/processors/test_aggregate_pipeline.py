"""The aggregate processor inside a running gateway: its own telemetry, the real clock."""

from __future__ import annotations

import asyncio
import time

from metricgate.config import load_config_text
from metricgate.model import MetricKind
from metricgate.pipeline.host import Host
from metricgate.pipeline.service import Service
from metricgate.telemetry.metrics import SelfMetrics
from tests.support.aggregate import (
    BASE,
    NS,
    A,
    B,
    G,
    feed,
    hist,
    make,
    native,
    points,
)
from tests.support.capture import CaptureExporter, InjectReceiver, registry_with_capture

LE = (0.1, 1.0)


async def test_own_telemetry_counts_matched_late_and_dropped_points_and_slots() -> None:

    h = native("h", MetricKind.HISTOGRAM)
    p, _, clock = make(
        """
        - {name: hist, match: h, interval: 1m, without: [k], outputs: [total]}
        - {match: g, interval: 1m, ignore_old_samples: true, outputs: [max]}
        """
    )
    telemetry = SelfMetrics()
    await p.start(Host(telemetry))
    try:
        await feed(p, clock, h, [(BASE + 1, {A: hist((1, 0, 0), 0.05, LE)})])
        await feed(p, clock, h, [(BASE + 2, {B: hist((1, 0), 0.05, (0.5,))})])
        await feed(p, clock, G, [(BASE + 3, {A: 1.0, B: 2.0})])
        await p.flush(BASE + 60.1)
        clock.t = BASE + 61
        await p.consume(points(G, {A: 1.0}, BASE + 59))
    finally:
        await p.shutdown()

    def sample(name: str, **labels: str) -> float | None:
        return telemetry.registry.get_sample_value(name, {"processor": "aggregate", **labels})

    assert sample("metricgate_processor_aggregate_matched_points_total", rule="hist") == 1
    assert sample("metricgate_processor_aggregate_matched_points_total", rule="1") == 2
    assert sample("metricgate_processor_dropped_points_total", reason="bounds_mismatch") == 1
    assert sample("metricgate_processor_dropped_points_total", reason="too_old") == 1
    assert sample("metricgate_processor_aggregate_slots", rule="hist") == 1
    assert sample("metricgate_processor_aggregate_slots", rule="1") == 2
    # b's only point was refused, so its state was forgotten at the first flush.
    assert sample("metricgate_processor_aggregate_input_series", rule="hist") == 1


async def test_runs_in_a_pipeline_on_the_real_clock() -> None:

    config = load_config_text(
        """
        receivers: {inject: {}}
        processors:
          aggregate:
            rules: [{match: g, interval: 1s, without: [k], outputs: [sum_samples]}]
        exporters: {capture: {}}
        service:
          telemetry: {metrics: {address: ""}}
          pipelines:
            metrics: {receivers: [inject], processors: [aggregate], exporters: [capture]}
        """,
        registry_with_capture(),
        {},
    )
    service = Service(config)
    await service.start()
    try:
        now = time.time()
        await InjectReceiver.instances["inject"].push(points(G, {A: 2.0, B: 3.0}, now))
        capture = CaptureExporter.instances["capture"]
        await asyncio.wait_for(capture.received.wait(), 5)
        (batch,) = capture.batches
        (group,) = batch.metrics
        assert group.metric.name == "g:1s_without_k_sum_samples"
        assert group.values == [5.0]
        assert group.timestamps[0] % NS == 0 and group.timestamps[0] > now * NS
    finally:
        await service.shutdown()
