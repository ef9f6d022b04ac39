"""Encode-path cost of the `otlp`, `datadog`, `cloudwatch` and `loadbalancing` exporters.

Builds N series (100 metrics, half gauges and half cumulative counters, 5 attributes each) with
the model directly and prints, per exporter, for a cold batch (caches empty) and a steady one (the
same series again, one interval later): points/s and CPU seconds per million points of the encode
path (otlp: `OtlpEncoder.encode` + gzip; datadog: `Mapper.map` + `payload.build` with gzip,
splitting included, and the points each body carries; cloudwatch: `Mapper.map` + `requests.build`
+ the JSON bodies botocore sends, and the points each request carries;
loadbalancing: routing each series on a 3-member ring, cold (key + ring lookup) and cached), and
payload bytes per point after compression; `no-gz` is otlp's steady encode alone, uncompressed
(gRPC compresses in its C core). No network is involved.

    .venv/bin/python bench/bench_exporters.py                 # 100k series
    .venv/bin/python bench/bench_exporters.py --series 20000 --histograms
"""

from __future__ import annotations

import argparse
import gc
import json
import time
import zlib
from collections.abc import Callable

from metricgate.exporters.cloudwatch import requests as cw_requests
from metricgate.exporters.cloudwatch.config import CloudWatchExporterConfig
from metricgate.exporters.cloudwatch.mapping import Mapper as CloudWatchMapper
from metricgate.exporters.datadog import payload
from metricgate.exporters.datadog.config import MetricsConfig
from metricgate.exporters.datadog.mapping import Mapper
from metricgate.exporters.loadbalancing.ring import HashRing
from metricgate.exporters.loadbalancing.routing import router
from metricgate.exporters.otlp import OtlpEncoder
from metricgate.model import (
    INTERNER,
    Batch,
    HistogramPoint,
    MetricKind,
    MetricPoints,
    Temporality,
    sorted_attributes,
)
from metricgate.pipeline.retry import points_per_request

METRICS = 100
BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def build_batch(series: int, histograms: bool, step: int) -> Batch:
    """`series` points; `step` moves time and counter values on, as a later scrape would."""
    resource = INTERNER.intern_resource(
        sorted_attributes({"service.name": "bench", "host.name": "bench-host"})
    )
    scope = INTERNER.intern_scope("bench.scope", "1.0.0")
    now = time.time_ns() + step * 10**10
    start = time.time_ns() + 1  # after the mapper was built: the first point counts (auto)
    per_metric = max(1, series // METRICS)
    groups = []
    for m in range(METRICS):
        if histograms:
            kind, temporality, monotonic = MetricKind.HISTOGRAM, Temporality.CUMULATIVE, False
        elif m % 2:
            kind, temporality, monotonic = MetricKind.SUM, Temporality.CUMULATIVE, True
        else:
            kind, temporality, monotonic = MetricKind.GAUGE, Temporality.UNSPECIFIED, False
        metric = INTERNER.intern_metric(
            resource, scope, f"bench.metric_{m}", "s", kind, temporality, monotonic
        )
        group = MetricPoints(metric)
        for i in range(per_metric):
            attributes = sorted_attributes(
                {
                    "method": ("GET", "POST", "PUT")[i % 3],
                    "status": str(200 + i % 5),
                    "route": f"/api/v1/items/{i % 50}",
                    "instance": f"pod-{i // 50}",
                    "zone": f"eu-west-{i % 3}",
                }
            )
            s = INTERNER.intern_series(metric, attributes)
            if histograms:
                counts = tuple(step + i % 7 + b for b in range(len(BOUNDS) + 1))
                value: object = HistogramPoint(sum(counts), 1.5 * step + i, BOUNDS, counts)
            else:
                value = float(i + step * (i % 11))
            group.append(s, value, now, start if monotonic or histograms else 0)  # type: ignore[arg-type]
        groups.append(group)
    return Batch(groups)


def measure(run: Callable[[], int]) -> tuple[float, float, int]:
    """(wall s, CPU s, bytes) of one run, GC off."""
    gc.collect()
    gc.disable()
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        size = run()
        return time.perf_counter() - wall, time.process_time() - cpu, size
    finally:
        gc.enable()


def report(name: str, phase: str, points: int, wall: float, cpu: float, size: int) -> None:
    print(
        f"{name:8} {phase:6} {points / wall:>12,.0f} points/s  "
        f"{cpu * 1e6 / points:6.2f} CPU s per 1M points  {size / points:6.2f} bytes/point"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=100_000)
    parser.add_argument("--histograms", action="store_true")
    args = parser.parse_args()

    encoder = OtlpEncoder()
    mapper = Mapper(MetricsConfig(), "bench-host")
    batches = [build_batch(args.series, args.histograms, step) for step in range(3)]
    points = batches[0].point_count()
    kind = "histograms" if args.histograms else "gauges+counters"
    print(f"{points:,} series of {kind}, one point each; gzip level 6 for both exporters")

    def otlp(batch: Batch) -> Callable[[], int]:
        def run() -> int:
            packer = zlib.compressobj(6, zlib.DEFLATED, 31)
            body = encoder.encode(batch)
            return len(packer.compress(body) + packer.flush())

        return run

    def datadog(batch: Batch) -> Callable[[], int]:
        def run() -> int:
            followers: list[int] = []
            built = payload.build(mapper.map(batch, followers=followers), "gzip")
            points_per_request(followers, built.spans)  # what the exporter counts sent points by
            return sum(len(body) for body in built.bodies)

        return run

    cw_mapper = CloudWatchMapper(CloudWatchExporterConfig(namespace="bench"))

    def cloudwatch(batch: Batch) -> Callable[[], int]:
        def run() -> int:
            followers: list[int] = []
            built = cw_requests.build(cw_mapper.map(batch, followers=followers), "bench")
            points_per_request(followers, built.spans)
            size = 0
            for request in built.requests:
                body = json.dumps(
                    {"Namespace": "bench", "MetricData": request}, default=str
                ).encode()
                packer = zlib.compressobj(6, zlib.DEFLATED, 31)
                size += len(packer.compress(body) + packer.flush())
            return size

        return run

    ring = HashRing(["a:4317", "b:4317", "c:4317"])
    route = router("series", [])
    assert route.per_series is not None
    series_key = route.per_series
    routes: dict[object, str] = {}

    def loadbalancing(batch: Batch) -> Callable[[], int]:
        def run() -> int:
            get = routes.get
            for group in batch.metrics:
                for series in group.series:
                    member = get(series)
                    if member is None:
                        member = routes[series] = ring.lookup(series_key(series))
            return 0

        return run

    for name, make in (
        ("otlp", otlp),
        ("datadog", datadog),
        ("cloudwatch", cloudwatch),
        ("loadbal.", loadbalancing),
    ):
        for phase, batch in (("cold", batches[0]), ("steady", batches[1])):
            report(name, phase, points, *measure(make(batch)))

    def otlp_raw() -> int:
        return len(encoder.encode(batches[2]))

    report("otlp", "no-gz", points, *measure(otlp_raw))


if __name__ == "__main__":
    main()
