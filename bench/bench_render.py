"""Scrape-page cost of the `prometheus` exporter: ingest, render, gzip, memory per series.

Builds N gauge/counter series (100 metrics, 5 attributes each, like the reference measurements)
with the model directly, folds them into a `Store`, then prints for each N:

- ingest of new series (cold: translation, prefix rendering) and of a steady-state update;
- a scrape's render of the whole page, chunk by chunk and encoded, in the text format and in
  OpenMetrics (best of 3; wall-clock and CPU seconds, CPU being steadier on a shared machine);
- the time to gzip those chunks at the exporter's level (done in a worker thread when serving);
- bytes of memory per series held by the store (tracemalloc, in a separate pass).

    .venv/bin/python bench/bench_render.py                   # 100k and 1M series
    .venv/bin/python bench/bench_render.py --series 50000 --histograms
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
import zlib
from collections.abc import Callable

from metricgate.exporters.prometheus.exporter import GZIP_LEVEL
from metricgate.exporters.prometheus.render import render
from metricgate.exporters.prometheus.store import Store
from metricgate.model import (
    INTERNER,
    Batch,
    HistogramPoint,
    MetricKind,
    MetricPoints,
    Temporality,
    sorted_attributes,
)
from metricgate.translate import PrometheusTranslator

METRICS = 100
BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def build_batch(series: int, histograms: bool, offset: float = 0.0) -> Batch:
    resource = INTERNER.intern_resource(
        sorted_attributes(
            {"service.name": "bench", "service.instance.id": "i-1", "host.name": "bench-host"}
        )
    )
    scope = INTERNER.intern_scope("bench.scope", "1.0.0")
    per_metric = max(1, series // METRICS)
    groups = []
    for m in range(METRICS):
        if histograms:
            kind, unit, temporality, monotonic = (
                MetricKind.HISTOGRAM,
                "s",
                Temporality.CUMULATIVE,
                False,
            )
        elif m % 2:
            kind, unit, temporality, monotonic = MetricKind.SUM, "1", Temporality.CUMULATIVE, True
        else:
            kind, unit, temporality, monotonic = (
                MetricKind.GAUGE,
                "By",
                Temporality.UNSPECIFIED,
                False,
            )
        metric = INTERNER.intern_metric(
            resource,
            scope,
            f"bench.metric_{m}",
            unit,
            kind,
            temporality,
            monotonic,
            f"Benchmark metric {m}.",
        )
        points = MetricPoints(metric)
        for i in range(per_metric):
            attributes = (
                ("http.method", ("GET", "POST", "PUT")[i % 3]),
                ("http.route", f"/api/v1/items/{i % 50}"),
                ("http.status_code", 200 + i % 5),
                ("region", ("eu-west-1", "us-east-1")[i % 2]),
                ("series", f"s{i}"),
            )
            value: float | HistogramPoint
            if histograms:
                value = HistogramPoint(i + 12, i * 0.5 + offset, BOUNDS, (1,) * 11 + (i + 1,))
            else:
                value = i * 1.5 + offset
            points.append(
                INTERNER.intern_series(metric, attributes), value, 1_700_000_000_000_000_000
            )
        groups.append(points)
    return Batch(groups)


class Timing:
    """Best wall-clock and CPU seconds of a few runs of one step."""

    def __init__(self, action: Callable[[], object], runs: int = 3) -> None:
        self.wall = self.cpu = float("inf")
        for _ in range(runs):
            gc.collect()
            wall, cpu = time.perf_counter(), time.process_time()
            self.result = action()
            self.wall = min(self.wall, time.perf_counter() - wall)
            self.cpu = min(self.cpu, time.process_time() - cpu)

    def line(self, label: str, rate: str = "") -> str:
        return f"  {label:<24}{self.wall:7.3f} s wall {self.cpu:7.3f} s CPU  {rate}"


def new_store() -> Store:
    return Store(PrometheusTranslator(), keep_timestamps=False, keep_exemplars=True)


def scrape(store: Store, openmetrics: bool) -> list[bytes]:
    """What a scrape does before the network: render chunk by chunk and encode."""
    return [chunk.encode() for chunk in render(store, openmetrics=openmetrics)]


def gzip_chunks(chunks: list[bytes]) -> int:
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
    return sum(len(compressor.compress(chunk)) for chunk in chunks) + len(compressor.flush())


def bytes_per_series(batch: Batch) -> float:
    """Memory the store holds per series after a scrape (the batch's objects not counted)."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    store = new_store()
    store.ingest(batch, 1.0)
    for _ in render(store):  # histograms build their per-line prefixes at the first scrape
        pass
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return held / len(store)


def timings(batch: Batch, update: Batch, kind: str) -> None:
    store = new_store()
    cold = Timing(lambda: store.ingest(batch, 1.0), runs=1)
    n = len(store)
    steady = Timing(lambda: store.ingest(update, 2.0))
    text = Timing(lambda: scrape(store, openmetrics=False))
    openmetrics = Timing(lambda: scrape(store, openmetrics=True))
    chunks: list[bytes] = text.result  # type: ignore[assignment]
    size = sum(map(len, chunks))
    compressed = Timing(lambda: gzip_chunks(chunks), runs=1)
    print(f"{n:>9,} {kind} series, page {size / 1e6:.1f} MB ({size // n} B/series)")
    print(cold.line("ingest new series", f"{n / cold.wall / 1e3:,.0f} k series/s"))
    print(steady.line("ingest update", f"{n / steady.wall / 1e6:,.2f} M points/s"))
    print(text.line("render text 0.0.4", f"{n / text.wall / 1e6:,.2f} M series/s"))
    print(openmetrics.line("render OpenMetrics", f"{n / openmetrics.wall / 1e6:,.2f} M series/s"))
    print(compressed.line(f"gzip level {GZIP_LEVEL}", f"{compressed.result / 1e6:.1f} MB"))


def run(series: int, histograms: bool) -> None:
    batch = build_batch(series, histograms)
    update = build_batch(series, histograms, offset=1.0)
    timings(batch, update, "histogram" if histograms else "number")
    print(f"  store memory            {bytes_per_series(batch):7.0f} B/series")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--histograms", action="store_true", help="11-bucket histograms instead")
    args = parser.parse_args()
    for series in args.series:
        run(series, args.histograms)


if __name__ == "__main__":
    main()
