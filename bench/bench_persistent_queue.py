"""Throughput of the persistent sending queue (`sending_queue.storage`), per fsync policy.

Enqueues `--batches` batches of `--points` gauge points through `ExporterQueue.enqueue` (OTLP
encode + one WAL record, on disk before it returns, as the receiver path does), then lets the
workers drain them into an exporter that accepts everything at once (read + decode + export +
ack). Prints batches/s and points/s for both halves under `fsync: always`, `batch` and `never`,
and the in-memory queue for comparison. Disk-bound: numbers depend on the filesystem under
`--dir` (default: a temporary directory). `--encrypt` also runs every disk policy with
`sending_queue.storage.encryption` and prints the ratio to the plain run.

    .venv/bin/python bench/bench_persistent_queue.py
    .venv/bin/python bench/bench_persistent_queue.py --batches 2000 --points 100 --dir /var/tmp
    .venv/bin/python bench/bench_persistent_queue.py --encrypt
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from metricgate.model import (
    INTERNER,
    Batch,
    MetricKind,
    MetricPoints,
    Temporality,
    sorted_attributes,
)
from metricgate.pipeline.component import Exporter
from metricgate.pipeline.encryption import write_key_file
from metricgate.pipeline.host import Host
from metricgate.pipeline.queue import ExporterQueue, QueueSettings
from metricgate.telemetry import SelfMetrics

NS = 1_700_000_000_000_000_000


class NullExporter(Exporter):
    """Accepts every batch at once: the bench measures the queue, not a backend."""

    def __init__(self) -> None:
        super().__init__("bench")
        self.points = 0
        self.done = asyncio.Event()
        self.expect = 0

    async def export(self, batch: Batch) -> None:
        self.points += batch.point_count()
        if self.points >= self.expect:
            self.done.set()


def build_batch(points: int, step: int) -> Batch:
    resource = INTERNER.intern_resource(sorted_attributes({"service.name": "bench"}))
    scope = INTERNER.intern_scope("bench", "1.0")
    metric = INTERNER.intern_metric(
        resource, scope, "bench_gauge", "", MetricKind.GAUGE, Temporality.UNSPECIFIED, False, ""
    )
    group = MetricPoints(metric)
    for i in range(points):
        series = INTERNER.intern_series(metric, (("instance", f"host-{i}"), ("job", "bench")))
        group.append(series, float(step + i), NS + step * 1_000_000_000)
    return Batch([group])


async def run(
    policy: str, directory: Path, batches: int, points: int, key_file: str | None = None
) -> tuple[float, float]:
    storage: dict[str, object] | None = None
    if policy != "memory":
        storage = {
            "directory": str(directory / f"{policy}-{bool(key_file)}"),
            "fsync": policy,
            "max_disk_bytes": "8GiB",
        }
        if key_file is not None:
            storage["encryption"] = {"key_file": key_file}
    settings = QueueSettings.model_validate(
        {"queue_size": batches, "num_consumers": 10, "storage": storage}
    )
    exporter = NullExporter()
    exporter.expect = batches * points
    queue = ExporterQueue(exporter, settings)
    await queue.start(Host(SelfMetrics()))
    prepared = [build_batch(points, step) for step in range(batches)]
    started = time.perf_counter()
    for batch in prepared:
        queue.enqueue(batch)  # never yields: the workers only run once all are queued
    enqueue_s = time.perf_counter() - started
    started = time.perf_counter()
    await exporter.done.wait()
    drain_s = time.perf_counter() - started
    await queue.shutdown(time.monotonic() + 5)
    return enqueue_s, drain_s


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=2000)
    parser.add_argument("--points", type=int, default=100)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--encrypt", action="store_true", help="also run with encryption on")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        print(f"{args.batches} batches x {args.points} points, 10 consumers, dir {tmp}")
        key_file = None
        if args.encrypt:
            key_file = str(Path(tmp) / "queue.key")
            write_key_file(key_file)
        for policy in ("always", "batch", "never", "memory"):
            enqueue_s, drain_s = await run(policy, Path(tmp), args.batches, args.points)
            label = "fsync=" + policy if policy != "memory" else "in memory"
            print(line(label, args.batches, args.points, enqueue_s, drain_s))
            if key_file is None or policy == "memory":
                continue
            sealed_enqueue_s, sealed_drain_s = await run(
                policy, Path(tmp), args.batches, args.points, key_file
            )
            print(
                line("  encrypted", args.batches, args.points, sealed_enqueue_s, sealed_drain_s)
                + f"   ({enqueue_s / sealed_enqueue_s:.0%} / {drain_s / sealed_drain_s:.0%})"
            )


def line(label: str, batches: int, points: int, enqueue_s: float, drain_s: float) -> str:
    return (
        f"{label:<13}"
        f"  enqueue {batches / enqueue_s:>9,.0f} batches/s"
        f" {batches * points / enqueue_s:>11,.0f} points/s"
        f"   drain {batches / drain_s:>9,.0f} batches/s"
        f" {batches * points / drain_s:>11,.0f} points/s"
    )


if __name__ == "__main__":
    asyncio.run(main())
