"""Steady-state cost per point of a realistic processor chain, in-process.

relabel (10 rules) -> cardinality_limit -> aggregate (one rule) -> a consumer that does nothing,
on N cumulative counter series in batches of 10k points, as receivers hand them on. The first
round meets every series for the first time; the figure that matters is the following rounds'
median, where every per-series decision is cached.

    .venv/bin/python bench/bench_pipeline.py                  # 100k series, 6 rounds
    .venv/bin/python bench/bench_pipeline.py --series 1000000 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time
import tracemalloc
from typing import Any

import yaml

from bench_relabel import KEEP_ALL, NullConsumer, build_batches
from metricgate.components import BUILTIN_FACTORIES
from metricgate.pipeline import Consumer, Host, Processor
from metricgate.telemetry import SelfMetrics

CHAIN: list[tuple[str, dict[str, Any]]] = [
    ("relabel", {"relabel_configs": yaml.safe_load(KEEP_ALL), "max_cached_series": 10_000_000}),
    ("cardinality_limit", {"max_series": 10_000_000, "max_series_per_metric": 1_000_000}),
    (
        "aggregate",
        {
            "rules": [
                {
                    "match": "metric_1_n",
                    "interval": "1m",
                    "without": ["path"],
                    "outputs": ["total", "rate_sum"],
                }
            ]
        },
    ),
]


async def build() -> list[Processor]:
    factories = {f.type: f for f in BUILTIN_FACTORIES}
    host = Host(SelfMetrics())
    consumer: Consumer = NullConsumer()
    chain: list[Processor] = []
    for type_name, raw in reversed(CHAIN):
        factory = factories[type_name]
        processor = factory.create(type_name, factory.config_model.model_validate(raw), consumer)
        assert isinstance(processor, Processor)
        await processor.start(host)
        chain.insert(0, processor)
        consumer = processor
    return chain


async def run(series: int, rounds: int) -> None:
    batches = build_batches(series)
    points = sum(b.point_count() for b in batches)
    gc.collect()
    tracemalloc.start()
    chain = await build()
    head = chain[0]
    started = time.perf_counter()
    for batch in batches:
        await head.consume(batch)
    cold = time.perf_counter() - started
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    rates = []
    for _ in range(rounds - 1):
        started = time.process_time()
        for batch in batches:
            await head.consume(batch)
        rates.append(points / (time.process_time() - started))
    for processor in chain:
        await processor.shutdown()
    print(f"relabel(10) -> cardinality_limit -> aggregate(1 rule), {series:,} series")
    print(f"  first sight : {points / cold:>12,.0f} points/s")
    print(f"  steady state: {statistics.median(rates):>12,.0f} points/s per core (CPU time)")
    print(f"  state held  : {held / series:>12,.0f} bytes per series (all three processors)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--series", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    asyncio.run(run(args.series, args.rounds))


if __name__ == "__main__":
    main()
