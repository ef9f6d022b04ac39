"""Decoding speed of the otlp receiver: OTLP request bytes -> `Batch`, in data points per second.

Request: 1 resource, 100 metrics x 100 number points x 5 string attributes (10k points, ~1.5 MB),
as the Python SDK encodes it. Figures:

- steady: the same series again (the common case: a known series costs a slice and a lookup);
- cold: every series new to the decoder (full attribute decode, interning);
- exemplars: steady series, but every point carries an exemplar (the per-point slow path);
- json: the same request as OTLP/JSON, steady;
- memory: bytes a decoder (and the process-wide attribute tables) holds per new series, for 100k
  series that each have a value no other series has (a user id) beside a repeating one.

    .venv/bin/python bench/bench_decode.py [--rounds 20]
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
import tracemalloc
from collections.abc import Callable

from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import Exemplar

from metricgate.wire.otlp.decode import ProtobufDecoder
from metricgate.wire.otlp.json import decode_json

METRICS = 100
POINTS = 100
ATTRIBUTES = 5


def build(tag: str, exemplars: bool = False) -> ExportMetricsServiceRequest:
    request = ExportMetricsServiceRequest()
    resource_metrics = request.resource_metrics.add()
    resource_metrics.resource.attributes.append(
        KeyValue(key="service.name", value=AnyValue(string_value="bench"))
    )
    scope_metrics = resource_metrics.scope_metrics.add()
    scope_metrics.scope.name = "bench.scope"
    now = time.time_ns()
    for m in range(METRICS):
        metric = scope_metrics.metrics.add(name=f"bench.metric.{m}", unit="1")
        metric.sum.aggregation_temporality = 2
        metric.sum.is_monotonic = True
        for i in range(POINTS):
            point = metric.sum.data_points.add(
                start_time_unix_nano=now - 60_000_000_000, time_unix_nano=now, as_double=i * 1.5
            )
            for a in range(ATTRIBUTES):
                point.attributes.append(
                    KeyValue(key=f"attribute.{a}", value=AnyValue(string_value=f"{tag}-{i}-{a}"))
                )
            if exemplars:
                point.exemplars.append(
                    Exemplar(
                        time_unix_nano=now,
                        as_double=1.0,
                        trace_id=bytes(range(16)),
                        span_id=bytes(range(8)),
                    )
                )
    return request


def held_per_series(series: int) -> float:
    """Bytes held after decoding `series` new series of one gauge, each with a unique `user`."""
    now = time.time_ns()
    bodies = []
    for start in range(0, series, 10_000):
        request = ExportMetricsServiceRequest()
        metric = request.resource_metrics.add().scope_metrics.add().metrics.add(name="flood")
        for i in range(start, min(series, start + 10_000)):
            point = metric.gauge.data_points.add(time_unix_nano=now, as_double=1.0)
            point.attributes.append(KeyValue(key="user", value=AnyValue(string_value=f"u-{i:08d}")))
            point.attributes.append(
                KeyValue(key="route", value=AnyValue(string_value=f"/r{i % 20}"))
            )
        bodies.append(request.SerializeToString())
    decoder = ProtobufDecoder()
    gc.collect()
    tracemalloc.start()
    for body in bodies:
        decoder.decode(body)
    gc.collect()
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return held / series


def rate(seconds: list[float]) -> str:
    best = min(seconds)
    median = statistics.median(seconds)
    points = METRICS * POINTS
    return (
        f"{points / median / 1e6:6.2f} M points/s median ({median * 1e3:6.2f} ms), "
        f"{points / best / 1e6:6.2f} M best"
    )


def timed(rounds: int, run: Callable[[int], object]) -> list[float]:
    out = []
    for i in range(rounds):
        started = time.perf_counter()
        run(i)
        out.append(time.perf_counter() - started)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    rounds = args.rounds

    body = build("steady").SerializeToString()
    decoder = ProtobufDecoder()
    assert decoder.decode(body).batch.point_count() == METRICS * POINTS
    print(
        f"request: {METRICS} metrics x {POINTS} points x {ATTRIBUTES} attributes, "
        f"{len(body) / 1e6:.2f} MB protobuf"
    )
    print(f"steady     {rate(timed(rounds, lambda _: decoder.decode(body)))}")

    cold_bodies = [build(f"cold{i}").SerializeToString() for i in range(rounds)]
    print(f"cold       {rate(timed(rounds, lambda i: ProtobufDecoder().decode(cold_bodies[i])))}")

    exemplar_body = build("steady", exemplars=True).SerializeToString()
    decoder.decode(exemplar_body)
    print(f"exemplars  {rate(timed(rounds, lambda _: decoder.decode(exemplar_body)))}")

    json_body = json.dumps(
        json_format.MessageToDict(build("steady"), use_integers_for_enums=True)
    ).encode()
    decode_json(json_body)
    print(f"json       {rate(timed(max(3, rounds // 4), lambda _: decode_json(json_body)))}")

    held = held_per_series(100_000)
    print(f"memory     {held:.0f} bytes held per new series (one unique value each)")

    official = ExportMetricsServiceRequest
    print(
        f"(reference: official ParseFromString alone "
        f"{rate(timed(rounds, lambda _: official.FromString(body)))})"
    )


if __name__ == "__main__":
    main()
