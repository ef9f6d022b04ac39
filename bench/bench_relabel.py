"""Throughput of the relabel processor with 10 rules on N series: cold (first sight) and cached.

Builds N series (100 metrics x N/100 series, 4 attributes, one resource), in batches of 10k points
as receivers hand them on, and feeds them to a `relabel` processor whose next consumer does
nothing. "cold" is the first pass, where every series is translated to its Prometheus view and run
through the rules (wall and CPU time: CPU time is the steadier figure on a loaded machine);
"cached" is the median of the following passes, where each point costs the cache lookup and the
output batch is built. Two rule sets: one that keeps every series (each input
metric maps into one output metric: the shared-lists path) and one that also drops ~10% of the
series (the per-point path).

    .venv/bin/python bench/bench_relabel.py                   # 100k series, 5 rounds
    .venv/bin/python bench/bench_relabel.py --series 1000000 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time
from typing import Any

import yaml

from metricgate.model import INTERNER, Batch, MetricKind, MetricPoints, Temporality
from metricgate.processors.relabel import RelabelConfig, RelabelProcessor

METRICS = 100
PER_BATCH = 10_000

KEEP_ALL = """
- {source_labels: [code], regex: '(\\d)\\d\\d', target_label: code_class, replacement: '${1}xx'}
- {action: labeldrop, regex: 'otel_scope_.*'}
- {action: labelmap, regex: 'instance_(id)', replacement: 'node_$1'}
- {action: labeldrop, regex: instance_id}
- {action: hashmod, source_labels: [node_id], modulus: 8, target_label: shard}
- {action: lowercase, source_labels: [method], target_label: method}
- {source_labels: [__name__], regex: '(.*)_total', target_label: __name__, replacement: '${1}_n'}
- {target_label: region, replacement: eu-west-1}
- {action: keep, source_labels: [__name__], regex: 'metric_.*'}
- {source_labels: [path], regex: '/api/(v[0-9]+)/.*', target_label: api_version}
"""
WITH_DROPS = KEEP_ALL.replace(
    "- {action: keep, source_labels: [__name__], regex: 'metric_.*'}",
    "- {action: drop, source_labels: [code, shard], regex: '5.*;[0-3]'}",
)


class NullConsumer:
    async def consume(self, batch: Batch) -> None:
        pass


def build_batches(series_count: int) -> list[Batch]:
    resource = INTERNER.intern_resource((("service.name", "bench"), ("service.instance.id", "i")))
    scope = INTERNER.intern_scope("bench", "1.0")
    per_metric = series_count // METRICS
    groups = []
    for m in range(METRICS):
        metric = INTERNER.intern_metric(
            resource, scope, f"metric_{m}", "", MetricKind.SUM, Temporality.CUMULATIVE, True
        )
        points = MetricPoints(metric)
        for i in range(per_metric):
            attributes = (
                ("code", ("200", "404", "500", "503")[i % 4]),
                ("instance_id", f"node-{i % 97}"),
                ("method", ("GET", "POST")[i % 2]),
                ("path", f"/api/v{i % 3}/items/{i}"),
            )
            points.append(INTERNER.intern_series(metric, attributes), float(i), i)
        groups.append(points)
    batches, current, size = [], [], 0
    for points in groups:
        current.append(points)
        size += len(points)
        if size >= PER_BATCH:
            batches.append(Batch(current))
            current, size = [], 0
    if current:
        batches.append(Batch(current))
    return batches


async def run(rules: str, batches: list[Batch], rounds: int) -> dict[str, Any]:
    config = RelabelConfig.model_validate(
        {"relabel_configs": yaml.safe_load(rules), "max_cached_series": 10_000_000}
    )
    processor = RelabelProcessor("relabel", config, NullConsumer())
    points = sum(b.point_count() for b in batches)
    gc.collect()
    start, start_cpu = time.perf_counter(), time.process_time()
    for batch in batches:
        await processor.consume(batch)
    cold = time.perf_counter() - start
    cold_cpu = time.process_time() - start_cpu
    rates = []
    for _ in range(rounds - 1):
        start = time.perf_counter()
        for batch in batches:
            await processor.consume(batch)
        rates.append(points / (time.perf_counter() - start))
    return {
        "points": points,
        "cold_rate": points / cold,
        "cold_us": cold / points * 1e6,
        "cold_cpu_us": cold_cpu / points * 1e6,
        "cached_rate": statistics.median(rates),
        "dropped": sum(processor.dropped.values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--series", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    batches = build_batches(args.series)
    print(f"relabel, 10 rules, {args.series:,} series, {len(batches)} batches of ~{PER_BATCH:,}")
    for name, rules in (("keeps every series", KEEP_ALL), ("drops ~10%", WITH_DROPS)):
        found = asyncio.run(run(rules, batches, args.rounds))
        print(
            f"  {name:<20} cold {found['cold_rate']:>11,.0f} points/s ({found['cold_us']:.1f} us, "
            f"{found['cold_cpu_us']:.1f} us CPU per new series)   "
            f"cached {found['cached_rate']:>11,.0f} points/s   "
            f"dropped {found['dropped']:,}"
        )


if __name__ == "__main__":
    main()
