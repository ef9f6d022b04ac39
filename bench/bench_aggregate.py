"""Throughput and memory of the `aggregate` processor.

1. Steady state: one rule over N input series (default 100k counters, 100 per output slot via
   `without: [instance]`), batches of 10k points; after one warm-up pass (every series new: the
   cold path, reported separately) R more passes are timed. Printed per output set: points/s.
2. Memory: M input series (default 1M) through one rule, measured with tracemalloc (input series
   objects are built before tracing starts: they are the receiver's, not ours). Printed: bytes per
   input series (route + per-rule state) for a 100:1 rule, and bytes per aggregation slot for a 1:1
   rule (no `by`/`without`: every input series is its own output series, the downsampling case),
   and the time one flush of all those slots takes.

    .venv/bin/python bench/bench_aggregate.py
    .venv/bin/python bench/bench_aggregate.py --series 20000 --memory-series 100000   # quick

The clock is injected and held inside one window, so no flush runs while measuring.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
import tracemalloc

from metricgate.model import INTERNER, Batch, Metric, MetricKind, MetricPoints, Series, Temporality
from metricgate.processors.aggregate import AggregateConfig, AggregateProcessor

START = 1_700_000_040.5
BATCH = 10_000


class _Null:
    async def consume(self, batch: Batch) -> None:
        pass


def _metric(kind: MetricKind) -> Metric:
    temporality = Temporality.CUMULATIVE if kind is MetricKind.SUM else Temporality.UNSPECIFIED
    return INTERNER.intern_metric(
        INTERNER.intern_resource(()),
        INTERNER.intern_scope(""),
        "requests_total",
        "",
        kind,
        temporality,
        kind is MetricKind.SUM,
        native_prometheus=True,
    )


def _series(metric: Metric, count: int) -> list[Series]:
    return [
        INTERNER.intern_series(
            metric, (("instance", f"i-{i % 100}"), ("job", "api"), ("path", f"/p/{i // 100}"))
        )
        for i in range(count)
    ]


def _batches(metric: Metric, series: list[Series], round_: int) -> list[Batch]:
    out = []
    ts = int((START - 0.4 + round_ * 0.001) * 1e9)  # inside the open window
    for first in range(0, len(series), BATCH):
        group = MetricPoints(metric)
        for i, s in enumerate(series[first : first + BATCH]):
            group.append(s, float(round_ * 10 + i % 7), ts)
        out.append(Batch([group]))
    return out


def _processor(rule: dict[str, object]) -> AggregateProcessor:
    config = AggregateConfig.model_validate({"rules": [rule]})
    return AggregateProcessor("aggregate", config, _Null(), clock=lambda: START)


async def _throughput(outputs: list[str], kind: MetricKind, count: int, rounds: int) -> None:
    metric = _metric(kind)
    series = _series(metric, count)
    processor = _processor(
        {"match": "requests_total", "interval": "1m", "without": ["instance"], "outputs": outputs}
    )
    rounds_of_batches = [_batches(metric, series, r) for r in range(rounds + 1)]
    began = time.perf_counter()
    for batch in rounds_of_batches[0]:
        await processor.consume(batch)
    cold = time.perf_counter() - began
    began = time.perf_counter()
    for batches in rounds_of_batches[1:]:
        for batch in batches:
            await processor.consume(batch)
    steady = time.perf_counter() - began
    slots = len(processor.rules[0].groups)
    print(
        f"  {kind.name.lower():5} {', '.join(outputs):48} steady {count * rounds / steady:>10,.0f}"
        f" points/s   cold {count / cold:>8,.0f} new series/s   ({slots:,} slots)"
    )


async def _memory(count: int) -> None:
    metric = _metric(MetricKind.SUM)
    series = _series(metric, count)
    for rule, per in (
        ({"without": ["instance"], "outputs": ["total"]}, "input series"),
        ({"outputs": ["total"]}, "slot (1:1)"),
    ):
        batches = _batches(metric, series, 0)
        processor = _processor({"match": "requests_total", "interval": "1m", **rule})
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for batch in batches:
            await processor.consume(batch)
        gc.collect()
        used = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        slots = len(processor.rules[0].groups)
        divisor = count if per == "input series" else slots
        flushes = []
        for window in (1, 2):  # the first flush also makes the output series
            began = time.perf_counter()
            await processor.flush(START + 60 * window)
            flushes.append(f"{(time.perf_counter() - began) * 1000:,.0f}")
        figure = f"{used / divisor:,.0f} bytes per {per}, flushes {' then '.join(flushes)} ms"
        print(f"  {rule!s:52} {count:,} inputs, {slots:,} slots: {figure}")
        del processor, batches


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--series", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--memory-series", type=int, default=1_000_000)
    args = parser.parse_args()
    print(f"steady state, {args.series:,} input series, {args.rounds} timed passes:")
    await _throughput(["total", "increase", "rate_sum"], MetricKind.SUM, args.series, args.rounds)
    await _throughput(
        ["count_samples", "sum_samples", "min", "max", "avg"],
        MetricKind.GAUGE,
        args.series,
        args.rounds,
    )
    await _throughput(["quantiles(0.5, 0.99)"], MetricKind.GAUGE, args.series, args.rounds)
    print(f"memory, {args.memory_series:,} input series (tracemalloc):")
    await _memory(args.memory_series)


if __name__ == "__main__":
    asyncio.run(main())
