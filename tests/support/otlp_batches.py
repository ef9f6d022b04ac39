"""Test data: a request holding every OTLP metric kind and attribute type, decoded."""

from __future__ import annotations

import math

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from metricgate.model import Batch
from metricgate.wire.otlp.decode import ProtobufDecoder
from tests.receivers.otlp_data import (
    CUMULATIVE,
    DELTA,
    SPAN_ID,
    T0,
    TRACE_ID,
    gauge,
    key_values,
    number,
    sum_metric,
)

EXEMPLAR = pb.Exemplar(
    time_unix_nano=T0 - 5,
    as_double=0.25,
    trace_id=TRACE_ID,
    span_id=SPAN_ID,
    filtered_attributes=key_values({"user": "u1"}),
)


def _histograms() -> list[pb.Metric]:
    full = pb.HistogramDataPoint(
        attributes=key_values({"route": "/a"}),
        start_time_unix_nano=T0 - 10**9,
        time_unix_nano=T0,
        count=6,
        sum=12.5,
        bucket_counts=[1, 2, 3],
        explicit_bounds=[0.5, 1.0],
        min=0.1,
        max=7.0,
        exemplars=[EXEMPLAR],
    )
    bare = pb.HistogramDataPoint(time_unix_nano=T0, count=3, bucket_counts=[3], flags=0)
    stale = pb.HistogramDataPoint(
        attributes=key_values({"route": "/gone"}), time_unix_nano=T0, flags=1
    )
    exponential = pb.ExponentialHistogramDataPoint(
        attributes=key_values({"k": "v"}),
        start_time_unix_nano=T0 - 10**9,
        time_unix_nano=T0,
        count=10,
        sum=-3.5,
        scale=3,
        zero_count=1,
        zero_threshold=1e-9,
        positive=pb.ExponentialHistogramDataPoint.Buckets(offset=-2, bucket_counts=[1, 0, 4]),
        negative=pb.ExponentialHistogramDataPoint.Buckets(offset=5, bucket_counts=[2, 2]),
        min=-40.0,
        max=3.0,
        exemplars=[EXEMPLAR],
    )
    summary = pb.SummaryDataPoint(
        attributes=key_values({"q": True}),
        start_time_unix_nano=T0 - 10**9,
        time_unix_nano=T0,
        count=4,
        sum=10.0,
        quantile_values=[
            pb.SummaryDataPoint.ValueAtQuantile(quantile=0.5, value=2.0),
            pb.SummaryDataPoint.ValueAtQuantile(quantile=0.99, value=4.0),
        ],
    )
    return [
        pb.Metric(
            name="latency",
            unit="s",
            description="request latency",
            histogram=pb.Histogram(data_points=[full, bare, stale], aggregation_temporality=DELTA),
        ),
        pb.Metric(
            name="size",
            unit="By",
            exponential_histogram=pb.ExponentialHistogram(
                data_points=[exponential], aggregation_temporality=CUMULATIVE
            ),
        ),
        pb.Metric(name="rpc.summary", summary=pb.Summary(data_points=[summary])),
    ]


def every_kind_request() -> ExportMetricsServiceRequest:
    """Two resources, scopes with attributes and schema URLs, all five kinds."""
    attributes: dict[str, object] = {
        "str": "x",
        "int": -7,
        "float": 1.5,
        "bool": False,
        "array": ["a", 1, [2.5]],
        "kv": {"nested": "yes", "n": 3},
        "empty": None,
    }
    numbers = [
        gauge(
            "temperature",
            number(21.5, attributes),
            number(-3, {"room": "b"}, start=0),
            number(math.inf, {"room": "c"}),
            number(0.0, {"room": "d"}, flags=1),
            unit="Cel",
        ),
        sum_metric(
            "requests",
            number(10, {"code": "200"}, exemplars=[EXEMPLAR]),
            number(2.0**60, {"code": "500"}),
        ),
        sum_metric("queue.depth", number(-4.0), temporality=DELTA, monotonic=False),
    ]
    scope = InstrumentationScope(name="lib", version="2", attributes=key_values({"s": 1}))
    return ExportMetricsServiceRequest(
        resource_metrics=[
            pb.ResourceMetrics(
                resource=Resource(attributes=key_values({"service.name": "svc", "host.name": "h"})),
                scope_metrics=[
                    pb.ScopeMetrics(scope=scope, metrics=numbers, schema_url="https://s/1"),
                    pb.ScopeMetrics(scope=InstrumentationScope(name="other"), metrics=numbers[:1]),
                ],
                schema_url="https://r/1",
            ),
            pb.ResourceMetrics(
                resource=Resource(attributes=key_values({"service.name": "two"})),
                scope_metrics=[pb.ScopeMetrics(metrics=_histograms())],
            ),
        ]
    )


def every_kind_batch() -> Batch:
    result = ProtobufDecoder().decode(every_kind_request().SerializeToString())
    assert result.rejected == 0, result.error_message
    return result.batch


def gauges(points: int, name: str = "agent_up", padding: int = 0) -> bytes:
    request = ExportMetricsServiceRequest()
    scope = request.resource_metrics.add().scope_metrics.add()
    gauge = scope.metrics.add(name=name, description="x" * padding).gauge
    for index in range(points):
        point = gauge.data_points.add(as_double=index, time_unix_nano=1_700_000_000_000_000_000)
        point.attributes.add(key="i").value.string_value = str(index)
    body: bytes = request.SerializeToString()
    return body
