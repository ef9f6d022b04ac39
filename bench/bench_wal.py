"""Throughput of the remote-write persistent queue (write-ahead log), per fsync policy.

Appends batches of `--points` gauge points through `ExporterQueue.enqueue` in front of the
remote-write exporter with `sending_queue.storage` (encode + one record per lane written to disk,
as the receiver path does) with the lanes' readers stopped, then reads and acks everything back
(`ShardLog.read` + `ack` as the lanes do it, besides HTTP; the offset is then written once, as
the log's timer would). Prints samples/s for both halves under `fsync: always`, `batch` and
`never`. Disk-bound: numbers depend on the filesystem under `--dir` (default: a temporary
directory). `--encrypt` seals every record (`sending_queue.storage.encryption`) and prints both,
with the ratio.

    .venv/bin/python bench/bench_wal.py
    .venv/bin/python bench/bench_wal.py --batches 500 --points 1000 --dir /var/tmp
    .venv/bin/python bench/bench_wal.py --encrypt
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from metricgate.exporters.prometheus_remote_write import (
    RemoteWriteExporter,
    RemoteWriteExporterConfig,
)
from metricgate.model import (
    INTERNER,
    Batch,
    MetricKind,
    MetricPoints,
    Temporality,
    sorted_attributes,
)
from metricgate.pipeline.encryption import write_key_file
from metricgate.pipeline.host import Host
from metricgate.pipeline.queue import ExporterQueue
from metricgate.telemetry import SelfMetrics

NS = 1_700_000_000_000_000_000


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
    storage: dict[str, Any] = {
        "directory": str(directory / f"{policy}-{bool(key_file)}"),
        "fsync": policy,
    }
    if key_file is not None:
        storage["encryption"] = {"key_file": key_file}
    config = RemoteWriteExporterConfig(
        endpoint="http://127.0.0.1:9/api/v1/write",
        target_info={"enabled": False},
        sending_queue={"storage": storage},
    )
    exporter = RemoteWriteExporter("bench", config)
    queue = ExporterQueue(exporter, config.sending_queue, config.retry_on_failure)
    await queue.start(Host(SelfMetrics()))
    lanes = queue.lanes
    assert lanes is not None and lanes.wal is not None
    for lane in lanes.disk_lanes:  # measure the disk, not the (down) backend
        await lane.close(time.monotonic())
    prepared = [build_batch(points, step) for step in range(batches)]
    started = time.perf_counter()
    for batch in prepared:
        queue.enqueue(batch)
    append_s = time.perf_counter() - started
    started = time.perf_counter()
    for shard_log in lanes.wal.shards:
        while records := shard_log.read(2000, 0):
            shard_log.delivered(records[-1].end)
    lanes.wal.persist_acks()  # what the log's timer does every 100 ms (`batch`, `never`)
    drain_s = time.perf_counter() - started
    await queue.shutdown(time.monotonic())
    total = batches * points
    return total / append_s, total / drain_s


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--encrypt", action="store_true", help="also run with encryption on")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        print(f"{args.batches} batches x {args.points} points, 10 shards, dir {tmp}")
        key_file = None
        if args.encrypt:
            key_file = str(Path(tmp) / "wal.key")
            write_key_file(key_file)
        for policy in ("always", "batch", "never"):
            append_rate, drain_rate = await run(policy, Path(tmp), args.batches, args.points)
            print(
                f"fsync={policy:<6}  append {append_rate:>12,.0f} samples/s"
                f"   read+ack {drain_rate:>12,.0f} samples/s"
            )
            if key_file is None:
                continue
            sealed_append, sealed_drain = await run(
                policy, Path(tmp), args.batches, args.points, key_file
            )
            print(
                f"  encrypted    append {sealed_append:>12,.0f} samples/s"
                f" ({sealed_append / append_rate:.0%})"
                f"   read+ack {sealed_drain:>12,.0f} samples/s ({sealed_drain / drain_rate:.0%})"
            )


if __name__ == "__main__":
    asyncio.run(main())
