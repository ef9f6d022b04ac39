"""Remote-write 2.0 conversion cost: ns per sample to turn the shards' 1.0 bodies into 2.0.

Encodes N gauge series with the exporter's encoder (as `bench_remote_write.py` does), cuts the
result into request bodies of `max_samples_per_send`, then prints, best of several runs (CPU
seconds):

- `to_v2`, the hand-written converter the shards use, with its label-block cache warm (steady
  state) and emptied before every request (more series than the cache holds);
- the same conversion through the schema's protobuf classes (parse `WriteRequest`, build
  `RequestV2`, serialize), the alternative it was measured against;
- snappy compression of the 1.0 and 2.0 bodies, and bytes per sample on the wire for each.

    .venv/bin/python bench/bench_remote_write_v2.py                # 100k series
    .venv/bin/python bench/bench_remote_write_v2.py --series 1000000 --histograms
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cramjam

sys.path.insert(0, str(Path(__file__).parent))

from bench_remote_write import bodies, build
from metricgate.exporters.prometheus_remote_write import Encoder
from metricgate.translate import PrometheusTranslator
from metricgate.wire.remotewrite import v2
from metricgate.wire.remotewrite.schema import RequestV2, WriteRequest
from metricgate.wire.remotewrite.v2 import to_v2


def with_protobuf(body: bytes) -> bytes:
    request: Any = WriteRequest.FromString(body)
    symbols: dict[str, int] = {"": 0}
    out: Any = RequestV2()
    for series in request.timeseries:
        refs = []
        for label in series.labels:
            refs.append(symbols.setdefault(label.name, len(symbols)))
            refs.append(symbols.setdefault(label.value, len(symbols)))
        converted = out.timeseries.add(labels_refs=refs)
        for sample in series.samples:
            converted.samples.add(value=sample.value, timestamp=sample.timestamp)
    out.symbols.extend(symbols)
    result: bytes = out.SerializeToString()
    return result


def best(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--series", type=int, default=100_000)
    parser.add_argument("--histograms", action="store_true")
    parser.add_argument("--max-samples", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    encoder = Encoder(PrometheusTranslator(), max_samples=args.max_samples)
    per_shard, _ = encoder.encode(build(args.series, args.histograms, 0), 1, time.monotonic())
    requests = bodies(per_shard, args.max_samples)
    samples = sum(f.samples for fragments in per_shard for f in fragments)
    converted = [to_v2(body) for body in requests]
    assert converted == [with_protobuf(body) for body in requests[:3]] + converted[3:]

    hand = best(lambda: [to_v2(body) for body in requests], args.runs)

    def uncached() -> None:
        for body in requests:
            v2._BLOCKS.clear()
            v2._PAIRS.clear()
            to_v2(body)

    cold = best(uncached, args.runs)
    proto = best(lambda: [with_protobuf(body) for body in requests], max(1, args.runs // 2))
    snappy_v1 = best(lambda: [cramjam.snappy.compress_raw(b) for b in requests], args.runs)
    snappy_v2 = best(lambda: [cramjam.snappy.compress_raw(b) for b in converted], args.runs)
    wire_v1 = sum(len(cramjam.snappy.compress_raw(b)) for b in requests)
    wire_v2 = sum(len(cramjam.snappy.compress_raw(b)) for b in converted)
    raw_v1 = sum(map(len, requests))
    raw_v2 = sum(map(len, converted))

    kind = "histogram" if args.histograms else "gauge"
    print(
        f"{args.series:,} {kind} series -> {samples:,} samples in {len(requests)} requests "
        f"of up to {args.max_samples}"
    )
    row("to_v2 (hand-written)", hand, samples)
    row("to_v2, nothing cached", cold, samples)
    row("via protobuf classes", proto, samples)
    row("snappy 1.0 body", snappy_v1, samples)
    row("snappy 2.0 body", snappy_v2, samples)
    for label, v1_bytes, v2_bytes in (("raw", raw_v1, raw_v2), ("snappy", wire_v1, wire_v2)):
        print(
            f"  {'bytes/sample ' + label:<24} 1.0 {v1_bytes / samples:7.2f}"
            f"   2.0 {v2_bytes / samples:7.2f}"
        )


def row(label: str, seconds: float, samples: int) -> None:
    print(
        f"  {label:<24} {seconds * 1e3:8.1f} ms CPU {seconds / samples * 1e9:8.0f} ns/sample "
        f"{samples / seconds / 1e3:8.0f} k samples/s"
    )


if __name__ == "__main__":
    main()
