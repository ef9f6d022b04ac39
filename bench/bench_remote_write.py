"""Remote-write encoding cost: samples/s encoded and snappy-compressed on one core, bytes/sample.

Builds N gauge series (100 metrics, 5 attributes each, like the reference measurements) with the
model directly and prints, best of several runs (CPU seconds, steadier than wall-clock on a shared
machine):

- the cold encode (new series: translation and label-block encoding, once per series);
- the steady encode (cached label blocks: pack the value, append three byte strings);
- snappy block compression of the resulting request bodies (cut at `max_samples_per_send`);
- bytes per sample on the wire after compression.

    .venv/bin/python bench/bench_remote_write.py                 # 100k series
    .venv/bin/python bench/bench_remote_write.py --series 1000000 --histograms
"""

from __future__ import annotations

import argparse
import time

import cramjam

from metricgate.exporters.prometheus_remote_write import Encoder, Fragment
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
NS = 1_700_000_000_000_000_000


def build(series: int, histograms: bool, step: int) -> Batch:
    resource = INTERNER.intern_resource(
        sorted_attributes({"service.name": "bench", "service.instance.id": "pod-1"})
    )
    scope = INTERNER.intern_scope("bench", "1.0")
    per_metric = series // METRICS
    groups = []
    for m in range(METRICS):
        kind = MetricKind.HISTOGRAM if histograms else MetricKind.GAUGE
        temporality = Temporality.CUMULATIVE if histograms else Temporality.UNSPECIFIED
        metric = INTERNER.intern_metric(
            resource, scope, f"bench.metric.{m}", "s", kind, temporality
        )
        points = MetricPoints(metric)
        for i in range(per_metric):
            attributes = sorted_attributes(
                {
                    "route": f"/api/v{i % 7}/items",
                    "method": ("GET", "POST", "PUT")[i % 3],
                    "status": str(200 + i % 5),
                    "pod": f"pod-{i % 50}",
                    "id": str(i),
                }
            )
            value: float | HistogramPoint = float(i + step)
            if histograms:
                counts = tuple((i + step + b) % 5 for b in range(len(BOUNDS) + 1))
                value = HistogramPoint(sum(counts), float(i), BOUNDS, counts)
            points.append(INTERNER.intern_series(metric, attributes), value, NS + step * 10**9)
        groups.append(points)
    return Batch(groups)


def cpu(fn: object) -> float:
    start = time.process_time()
    fn()  # type: ignore[operator]
    return time.process_time() - start


def bodies(per_shard: list[list[Fragment]], max_samples: int) -> list[bytes]:
    out, parts, count = [], [], 0
    for fragment in (f for fragments in per_shard for f in fragments):
        if count + fragment.samples > max_samples and parts:
            out.append(b"".join(parts))
            parts, count = [], 0
        parts.append(fragment.data)
        count += fragment.samples
    if parts:
        out.append(b"".join(parts))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--series", type=int, default=100_000)
    parser.add_argument("--histograms", action="store_true")
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--max-samples", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    encoder = Encoder(PrometheusTranslator(), max_samples=args.max_samples)
    batches = [build(args.series, args.histograms, step) for step in range(args.runs + 1)]
    result: list[list[list[Fragment]]] = []

    def encode(batch: Batch) -> None:
        result.append(encoder.encode(batch, args.shards, time.monotonic())[0])

    cold = cpu(lambda: encode(batches[0]))
    steady = min(cpu(lambda b=b: encode(b)) for b in batches[1:])  # type: ignore[misc]
    samples = sum(f.samples for fragments in result[-1] for f in fragments)
    requests = bodies(result[-1], args.max_samples)
    raw = sum(len(body) for body in requests)
    compressed: list[bytes] = []
    compress = min(
        cpu(lambda: compressed.extend(bytes(cramjam.snappy.compress_raw(b)) for b in requests))
        for _ in range(3)
    )
    wire = sum(len(c) for c in compressed[-len(requests) :])
    kind = "histogram" if args.histograms else "gauge"
    print(f"{args.series:,} {kind} series -> {samples:,} samples per round, {args.shards} shards")
    row("cold encode (new series)", cold, samples)
    row("steady encode", steady, samples)
    row("snappy compress", compress, samples, f"  {raw / compress / 1e6:.0f} MB/s")
    row("encode + compress", steady + compress, samples)
    print(f"  {'bytes/sample raw':<26} {raw / samples:8.2f}")
    print(f"  {'bytes/sample after snappy':<26} {wire / samples:8.2f}")


def row(label: str, seconds: float, samples: int, extra: str = "") -> None:
    rate = samples / seconds / 1e3
    print(f"  {label:<26} {seconds * 1e3:8.1f} ms CPU {rate:8.0f} k samples/s{extra}")


if __name__ == "__main__":
    main()
