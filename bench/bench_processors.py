"""Steady-state throughput of the series-keyed processors, in process, on N series.

For each processor: builds `rounds` rounds of batches covering N series (100 metrics x N/100
series, 4 attributes each, 10k points per batch as receivers hand them on), feeds one round to fill
the caches and state (printed as "first pass"), then times the remaining rounds and prints the
median points/s. The next consumer does nothing, so the figure is the processor's own cost.
`filter (names)` decides once per metric group, so its figure is per-group cost spread over the
group's points; the batch processor is fed 200-point batches, as many small requests would be.

    .venv/bin/python bench/bench_processors.py                  # 100k series, 5 rounds
    .venv/bin/python bench/bench_processors.py --series 1000000 --rounds 3 --only filter
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time
from collections.abc import Callable
from typing import Any

from metricgate.model import (
    INTERNER,
    Batch,
    HistogramPoint,
    MetricKind,
    MetricPoints,
    PointValue,
    Temporality,
    sorted_attributes,
)
from metricgate.pipeline.component import Processor
from metricgate.processors.attributes import AttributesConfig, AttributesProcessor
from metricgate.processors.batch import BatchConfig, BatchProcessor
from metricgate.processors.cumulative_to_delta import (
    CumulativeToDeltaConfig,
    CumulativeToDeltaProcessor,
)
from metricgate.processors.delta_to_cumulative import (
    DeltaToCumulativeConfig,
    DeltaToCumulativeProcessor,
)
from metricgate.processors.filter import FilterConfig, FilterProcessor
from metricgate.processors.resource import ResourceConfig, ResourceProcessor

METRICS = 100
PER_BATCH = 10_000
STEP_NS = 10_000_000_000
BOUNDS = (0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0)


class NullConsumer:
    async def consume(self, batch: Batch) -> None:
        pass


Make = Callable[[NullConsumer], Processor]

PROCESSORS: dict[str, tuple[Make, Temporality, MetricKind]] = {
    # name: (build the processor, temporality and kind of the input)
    "filter (names)": (
        lambda c: FilterProcessor(
            "filter",
            FilterConfig.model_validate(
                {"exclude": {"match_type": "regexp", "metric_names": ["metric_9.*"]}}
            ),
            c,
        ),
        Temporality.CUMULATIVE,
        MetricKind.SUM,
    ),
    "filter (attributes)": (
        lambda c: FilterProcessor(
            "filter",
            FilterConfig.model_validate(
                {
                    "exclude": {
                        "attributes": [{"key": "code", "value": "5..", "match_type": "regexp"}]
                    }
                }
            ),
            c,
        ),
        Temporality.CUMULATIVE,
        MetricKind.SUM,
    ),
    "attributes": (
        lambda c: AttributesProcessor(
            "attributes",
            AttributesConfig.model_validate(
                {
                    "actions": [
                        {"key": "pod", "action": "delete"},
                        {"key": "env", "action": "upsert", "value": "prod"},
                    ]
                }
            ),
            c,
        ),
        Temporality.CUMULATIVE,
        MetricKind.SUM,
    ),
    "resource": (
        lambda c: ResourceProcessor(
            "resource",
            ResourceConfig.model_validate(
                {"actions": [{"key": "cloud.region", "action": "upsert", "value": "eu-west-1"}]}
            ),
            c,
        ),
        Temporality.CUMULATIVE,
        MetricKind.SUM,
    ),
    "batch (batches of 200 -> 8192)": (
        lambda c: BatchProcessor("batch", BatchConfig(send_batch_size=8192, timeout=3600), c),
        Temporality.CUMULATIVE,
        MetricKind.SUM,
    ),
    "delta_to_cumulative (sums)": (
        lambda c: DeltaToCumulativeProcessor("d2c", DeltaToCumulativeConfig(), c),
        Temporality.DELTA,
        MetricKind.SUM,
    ),
    "delta_to_cumulative (histograms)": (
        lambda c: DeltaToCumulativeProcessor("d2c", DeltaToCumulativeConfig(), c),
        Temporality.DELTA,
        MetricKind.HISTOGRAM,
    ),
    "cumulative_to_delta (sums)": (
        lambda c: CumulativeToDeltaProcessor(
            "c2d", CumulativeToDeltaConfig(initial_value="keep"), c
        ),
        Temporality.CUMULATIVE,
        MetricKind.SUM,
    ),
    "cumulative_to_delta (histograms)": (
        lambda c: CumulativeToDeltaProcessor(
            "c2d", CumulativeToDeltaConfig(initial_value="keep"), c
        ),
        Temporality.CUMULATIVE,
        MetricKind.HISTOGRAM,
    ),
}


def build_rounds(
    series: int, rounds: int, temporality: Temporality, kind: MetricKind, per_batch: int
) -> list[list[Batch]]:
    """`rounds` rounds of batches; every round has one point per series, later timestamps."""
    resource = INTERNER.intern_resource(sorted_attributes({"service.name": "bench"}))
    scope = INTERNER.intern_scope("bench", "1")
    per_metric = max(1, series // METRICS)
    keys = []
    for m in range(METRICS):
        metric = INTERNER.intern_metric(
            resource, scope, f"metric_{m}", "1", kind, temporality, monotonic=True
        )
        for i in range(per_metric):
            attributes = sorted_attributes(
                {
                    "code": f"{200 + 100 * (i % 4)}",
                    "path": f"/p/{i}",
                    "pod": f"pod-{i % 7}",
                    "method": "GET",
                }
            )
            keys.append(INTERNER.intern_series(metric, attributes))
    start = time.time_ns() - 3600 * 10**9
    out = []
    for r in range(rounds):
        ts = start + (r + 1) * STEP_NS
        value = _value(kind, temporality, r)
        batches = []
        for offset in range(0, len(keys), per_batch):
            groups: dict[Any, MetricPoints] = {}
            for s in keys[offset : offset + per_batch]:
                group = groups.get(s.metric)
                if group is None:
                    group = groups[s.metric] = MetricPoints(s.metric)
                group.append(s, value, ts, start)
            batches.append(Batch(list(groups.values())))
        out.append(batches)
    return out


def _value(kind: MetricKind, temporality: Temporality, round_no: int) -> PointValue:
    n = 1 if temporality is Temporality.DELTA else round_no + 1
    if kind is MetricKind.HISTOGRAM:
        return HistogramPoint(8 * n, 1.5 * n, BOUNDS, (n,) * 8)
    return float(n)


async def run_one(name: str, series: int, rounds: int) -> None:
    make, temporality, kind = PROCESSORS[name]
    per_batch = 200 if name.startswith("batch") else PER_BATCH
    data = build_rounds(series, rounds, temporality, kind, per_batch)
    points = sum(b.point_count() for b in data[0])
    proc = make(NullConsumer())
    gc.collect()
    gc.disable()
    try:
        timings = []
        for batches in data:
            started = time.perf_counter()
            for batch in batches:
                await proc.consume(batch)
            timings.append(time.perf_counter() - started)
        await proc.shutdown()
    finally:
        gc.enable()
    first, steady = timings[0], statistics.median(timings[1:])
    print(
        f"{name:34s} steady {points / steady:>12,.0f} points/s   "
        f"first pass {points / first:>11,.0f} points/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5, help="at least 2")
    parser.add_argument("--only", default="", help="run processors whose name contains this")
    args = parser.parse_args()
    print(f"{args.series:,} series, {PER_BATCH:,} points per batch, {args.rounds} rounds")
    for name in PROCESSORS:
        if args.only in name:
            asyncio.run(run_one(name, args.series, max(2, args.rounds)))


if __name__ == "__main__":
    main()
