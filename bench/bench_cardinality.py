"""Cardinality limiter: steady-state throughput and memory per tracked series.

Builds N series (M metrics x N/M series; attributes method, status, user_id with user_id unique
per series), then prints:
- bytes per tracked series: the limiter's own state (tracemalloc), series objects excluded since
  the pipeline holds them anyway; right after admission, and after a window rotation once every
  series moved to the new generation (the old generation's table is kept until the next one);
- new-series admission rate (every series new: the cold path);
- steady-state points/s, every series admitted and current (the fast path);
- the first pass after a rotation (every series moves generation once);
- flood: points/s when nearly every series is over its metric's cap and folded into overflow
  (cumulative counters: each folded series' last value is remembered), and bytes per refused
  series remembered.

    .venv/bin/python bench/bench_cardinality.py                     # 1M series
    .venv/bin/python bench/bench_cardinality.py --series 100000 --passes 3
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
import tracemalloc

from metricgate.model import (
    INTERNER,
    Batch,
    MetricKind,
    MetricPoints,
    Series,
    Temporality,
    sorted_attributes,
)
from metricgate.processors.cardinality_limit import CardinalityLimitConfig, CardinalityLimiter

TS = 1_700_000_000_000_000_000


class _Sink:
    async def consume(self, batch: Batch) -> None:
        pass


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def build_series(count: int, metrics: int) -> list[list[Series]]:
    resource = INTERNER.intern_resource(sorted_attributes({"service.name": "bench"}))
    scope = INTERNER.intern_scope("bench")
    out = []
    per_metric = count // metrics
    for m in range(metrics):
        metric = INTERNER.intern_metric(
            resource, scope, f"bench_metric_{m}", "", MetricKind.SUM, Temporality.CUMULATIVE, True
        )
        out.append(
            [
                INTERNER.intern_series(
                    metric,
                    (
                        ("method", ("GET", "POST", "PUT", "DELETE")[i % 4]),
                        ("status", ("200", "201", "404", "429", "500")[i % 5]),
                        ("user_id", f"user-{i}"),
                    ),
                )
                for i in range(per_metric)
            ]
        )
    return out


def build_batches(by_metric: list[list[Series]], batch_points: int) -> list[Batch]:
    """Batches of `batch_points` points spread over every metric (one group per metric)."""
    per_group = max(1, batch_points // len(by_metric))
    per_metric = len(by_metric[0])
    batches = []
    for offset in range(0, per_metric, per_group):
        groups = []
        for series in by_metric:
            chunk = series[offset : offset + per_group]
            group = MetricPoints(series[0].metric)
            for one in chunk:
                group.append(one, 1.0, TS)
            groups.append(group)
        batches.append(Batch(groups))
    return batches


def limiter(clock: _Clock, **config: object) -> CardinalityLimiter:
    return CardinalityLimiter(
        "bench", CardinalityLimitConfig.model_validate(config), _Sink(), clock
    )


async def feed(processor: CardinalityLimiter, batches: list[Batch]) -> float:
    started = time.perf_counter()
    for batch in batches:
        await processor.consume(batch)
    return time.perf_counter() - started


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=1_000_000)
    parser.add_argument("--metrics", type=int, default=100)
    parser.add_argument("--batch", type=int, default=10_000, help="points per batch")
    parser.add_argument("--passes", type=int, default=5, help="steady-state passes")
    args = parser.parse_args()
    per_metric = args.series // args.metrics
    by_metric = build_series(args.series, args.metrics)
    batches = build_batches(by_metric, args.batch)
    total = sum(b.point_count() for b in batches)
    caps = {"max_series": 0, "max_series_per_metric": per_metric, "window": 60}
    print(f"{total:,} series in {args.metrics} metrics, {len(batches)} batches of {args.batch:,}")

    gc.collect()
    tracemalloc.start()
    clock = _Clock()
    processor = limiter(clock, **caps)
    base = tracemalloc.get_traced_memory()[0]
    await feed(processor, batches)
    admitted = tracemalloc.get_traced_memory()[0] - base
    clock.now += 61
    await feed(processor, batches)
    rotated, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert processor.tracker.admitted_total == total
    print(
        f"memory: {admitted / total:.0f} bytes/series after admission, "
        f"{(rotated - base) / total:.0f} after a rotation (peak {(peak - base) / total:.0f})"
    )
    del processor
    gc.collect()

    clock = _Clock()
    processor = limiter(clock, **caps)
    cold = await feed(processor, batches)
    print(f"admission (all series new): {total / cold:,.0f} series/s")
    steady = min([await feed(processor, batches) for _ in range(args.passes)])
    print(f"steady state: {total / steady:,.0f} points/s ({steady / total * 1e9:.0f} ns/point)")
    clock.now += 61
    promote = await feed(processor, batches)
    print(f"first pass after a rotation: {total / promote:,.0f} points/s")

    flood_batches = batches[: max(1, len(batches) // 10)]
    flood_points = sum(b.point_count() for b in flood_batches)
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    processor = limiter(_Clock(), max_series_per_metric=10, window=60)
    await feed(processor, flood_batches)
    refused_bytes = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    refused = processor.tracker.refused_total
    print(f"memory: {refused_bytes / refused:.0f} bytes per refused series remembered")
    flood = min([await feed(processor, flood_batches) for _ in range(args.passes)])
    print(
        f"flood (overflow, {flood_points:,} points, 99%+ folded): "
        f"{flood_points / flood:,.0f} points/s"
    )


if __name__ == "__main__":
    asyncio.run(main())
