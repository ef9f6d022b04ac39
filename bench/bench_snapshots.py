"""State across restarts at scale: snapshot write and restore time and file size per component.

Each stateful component gets 100k series (100 metrics x 1000 series, 4 string attributes, one
resource; histograms for the page), from a `Service` built on the config below, then the service
is shut down (which writes the snapshots) and a second process builds the same service and
restores them, as a restarted gateway does (cold: nothing interned yet). Printed per component:
the file's bytes, bytes per series, write and restore seconds.

    .venv/bin/python bench/bench_snapshots.py [--series 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from metricgate.config import load_config_text
from metricgate.model import (
    INTERNER,
    Batch,
    HistogramPoint,
    MetricKind,
    MetricPoints,
    Temporality,
)
from metricgate.pipeline.registry import default_registry
from metricgate.pipeline.service import Service

CONFIG = """
receivers:
  otlp: {{protocols: {{http: {{endpoint: "127.0.0.1:0"}}}}}}
processors:
  cardinality_limit: {{max_series: 10000000}}
  delta_to_cumulative: {{}}
  aggregate:
    rules: [{{match: '{{__name__=~"m0_.*"}}', interval: 1m, by: [route], outputs: [total]}}]
exporters:
  prometheus: {{endpoint: "127.0.0.1:0"}}
  prometheus_remote_write: {{endpoint: "http://127.0.0.1:9/api/v1/write"}}
service:
  state_directory: {directory}
  shutdown_timeout: 1s
  pipelines:
    metrics:
      receivers: [otlp]
      processors: [cardinality_limit, delta_to_cumulative, aggregate]
      exporters: [prometheus]
    metrics/rw: {{receivers: [otlp], exporters: [prometheus_remote_write]}}
  telemetry: {{metrics: {{address: ""}}, logs: {{level: info}}}}
"""


def batch(series: int) -> Batch:
    resource = INTERNER.intern_resource((("service.name", "bench"),))
    scope = INTERNER.intern_scope("bench")
    groups = []
    per_metric = 1000
    now = time.time_ns()
    for m in range(series // per_metric):
        histogram = m % 10 == 9
        metric = INTERNER.intern_metric(
            resource,
            scope,
            f"m{m}_requests",
            "1",
            MetricKind.HISTOGRAM if histogram else MetricKind.SUM,
            Temporality.DELTA,
            True,
        )
        group = MetricPoints(metric)
        for i in range(per_metric):
            attributes = (
                ("pod", f"pod-{i % 50}"),
                ("route", f"/api/v1/items/{i % 20}"),
                ("status", str(200 + i % 3)),
                ("user", f"user-{i}"),
            )
            value = HistogramPoint(3, 1.5, (0.1, 1.0), (1, 1, 1)) if histogram else 1.0 + i
            group.append(INTERNER.intern_series(metric, attributes), value, now, now - 10**9)
        groups.append(group)
    return Batch(groups)


def sizes(directory: Path) -> dict[str, int]:
    return {path.name: path.stat().st_size for path in sorted(directory.iterdir())}


async def write(directory: Path, series: int) -> None:
    service = Service(load_config_text(CONFIG.format(directory=directory), default_registry()))
    data = batch(series)
    await service.start()
    receiver = service.receivers["otlp"]
    await receiver.next_consumer.consume(data)
    await asyncio.sleep(0.5)  # let the exporter queues take it
    await service.shutdown()


async def restore(directory: Path) -> None:
    service = Service(load_config_text(CONFIG.format(directory=directory), default_registry()))
    if service.snapshots is not None:
        service.snapshots.restore_all(service.stateful)


class Timings(logging.Handler):
    """Collects the seconds the snapshot store logs per component."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        component = getattr(record, "component", None)
        if component is not None and hasattr(record, "seconds"):
            self.seconds[component] = record.seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--series", type=int, default=100_000)
    parser.add_argument("--restore", help=argparse.SUPPRESS)
    args = parser.parse_args()
    timings = Timings()
    logger = logging.getLogger("metricgate.pipeline.snapshots")
    logger.addHandler(timings)
    logger.setLevel(logging.INFO)
    if args.restore:
        asyncio.run(restore(Path(args.restore)))
        print(json.dumps(timings.seconds))
        return
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        asyncio.run(write(directory, args.series))
        written = dict(timings.seconds)
        files = sizes(directory)
        out = subprocess.run(
            [sys.executable, __file__, "--restore", tmp], capture_output=True, text=True, check=True
        )
        restored = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"{args.series} series per component")
    print(f"{'component':45} {'bytes':>11} {'B/series':>9} {'write s':>8} {'restore s':>9}")
    for name, size in files.items():
        key = name.removesuffix(".state").replace("%2F", "/")
        print(
            f"{key:45} {size:11d} {size / args.series:9.1f} "
            f"{written.get(key, float('nan')):8.2f} {restored.get(key, float('nan')):9.2f}"
        )


if __name__ == "__main__":
    main()
