"""What handing points to another worker costs (`metricgate.workers.batches`), in one process.

Under `--workers N` the part of a batch another worker owns is written by `Outgoing` and read by
that worker's `Incoming`. This times both, per point, for batches shaped as real senders make
them (an SDK export: a few hundred points over many metrics; a Prometheus remote-write request:
2,000 samples), for known series (numbers only) and for new ones (defined first), and prints the
same through the OTLP codec the persistent queue uses, for comparison.

    .venv/bin/python bench/bench_workers.py
"""

from __future__ import annotations

import time

from metricgate.model import INTERNER, Batch, Metric, MetricKind, MetricPoints, Temporality
from metricgate.pipeline.persistent_queue import BatchCodec
from metricgate.workers.batches import Incoming, Outgoing

NS = 1_700_000_000_000_000_000


def batch(metrics: int, per_metric: int, generation: int = 0) -> Batch:
    resource = INTERNER.intern_resource((("service.name", "bench"),))
    scope = INTERNER.intern_scope("bench", "1")
    groups = []
    for m in range(metrics):
        metric: Metric = INTERNER.intern_metric(
            resource, scope, f"bench_requests_{m}", "", MetricKind.SUM, Temporality.CUMULATIVE, True
        )
        group = MetricPoints(metric)
        for s in range(per_metric):
            attributes = (("code", "200"), ("gen", str(generation)), ("route", f"/api/{s}"))
            group.append(INTERNER.intern_series(metric, attributes), float(s), NS, NS - 10**9)
        groups.append(group)
    return Batch(groups)


def per_point(seconds: float, points: int) -> str:
    return f"{seconds / points * 1e6:.2f} us"


def run(name: str, metrics: int, per_metric: int, repeat: int) -> None:
    points = metrics * per_metric
    outgoing, incoming = Outgoing(BatchCodec()), Incoming(BatchCodec())
    known = batch(metrics, per_metric)
    incoming.decode(outgoing.encode(known))
    started = time.process_time()
    bodies = [outgoing.encode(known) for _ in range(repeat)]
    written = time.process_time() - started
    started = time.process_time()
    for body in bodies:
        incoming.decode(body)
    read = time.process_time() - started
    fresh = [batch(metrics, per_metric, generation) for generation in range(1, 6)]
    started = time.process_time()
    for each in fresh:
        incoming.decode(outgoing.encode(each))
    new = time.process_time() - started
    codec, other = BatchCodec(), BatchCodec()
    other.decode(codec.encode(known))
    started = time.process_time()
    for _ in range(repeat):
        other.decode(codec.encode(known))
    otlp = time.process_time() - started
    print(
        f"{name:<34} {points:>5} points: known series write {per_point(written, points * repeat)}"
        f", read {per_point(read, points * repeat)} ({len(bodies[0]) / points:.1f} B/point); "
        f"new series {per_point(new, points * len(fresh))} both ends; "
        f"through OTLP {per_point(otlp, points * repeat)} both ends"
    )


def main() -> None:
    run("SDK export (100 metrics x 5)", 100, 5, 400)
    run("SDK export (40 metrics x 5)", 40, 5, 1000)
    run("remote-write request (100 x 20)", 100, 20, 100)
    run("one metric (1 x 2000)", 1, 2000, 100)


if __name__ == "__main__":
    main()
