"""OTLP/JSON decoding gives the same batch as protobuf for the same data."""

from __future__ import annotations

import contextlib
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb

from metricgate.wire.otlp.decode import ProtobufDecoder
from metricgate.wire.otlp.json import decode_json
from metricgate.wire.otlp.points import DecodeError
from tests.receivers.otlp_data import (
    DELTA,
    SPAN_ID,
    T0,
    TRACE_ID,
    gauge,
    key_values,
    number,
    request,
    snapshot,
    sum_metric,
    to_json,
)

RICH = request(
    gauge(
        "temperature",
        number(21.5, {"room": "a", "floor": 3, "tags": ["x", True], "raw": b"\x01\x02"}),
        number(math.nan, {"room": "b"}),
        number(math.inf, {"room": "c"}, start=0),
        unit="Cel",
    ),
    sum_metric(
        "requests",
        number(
            2**62,
            {"route": "/", "nested": {"k": [1.5, None]}},
            exemplars=[
                pb.Exemplar(
                    time_unix_nano=T0,
                    as_double=0.5,
                    trace_id=TRACE_ID,
                    span_id=SPAN_ID,
                    filtered_attributes=key_values({"user": "u"}),
                )
            ],
        ),
        number(1.0, {"route": "/"}, flags=1),
        number(1.0, {"route": "/x"}, time=0),
        temporality=DELTA,
    ),
    sum_metric("unspecified", number(1.0), temporality=0),
    pb.Metric(
        name="latency",
        description="how long",
        histogram=pb.Histogram(
            aggregation_temporality=DELTA,
            data_points=[
                pb.HistogramDataPoint(
                    time_unix_nano=T0,
                    count=3,
                    sum=1.25,
                    bucket_counts=[1, 2],
                    explicit_bounds=[0.5],
                    min=0.1,
                    max=0.9,
                    exemplars=[pb.Exemplar(time_unix_nano=T0, as_int=7, span_id=SPAN_ID)],
                ),
                pb.HistogramDataPoint(time_unix_nano=T0, count=2, bucket_counts=[2], sum=1.0),
                pb.HistogramDataPoint(
                    time_unix_nano=T0, count=1, bucket_counts=[1, 0], explicit_bounds=[2, 1]
                ),
            ],
        ),
    ),
    pb.Metric(
        name="size",
        exponential_histogram=pb.ExponentialHistogram(
            aggregation_temporality=DELTA,
            data_points=[
                pb.ExponentialHistogramDataPoint(
                    time_unix_nano=T0,
                    count=3,
                    scale=-2,
                    zero_count=1,
                    positive=pb.ExponentialHistogramDataPoint.Buckets(offset=-3, bucket_counts=[2]),
                    zero_threshold=1e-9,
                )
            ],
        ),
    ),
    pb.Metric(
        name="rpc",
        summary=pb.Summary(
            data_points=[
                pb.SummaryDataPoint(
                    time_unix_nano=T0,
                    start_time_unix_nano=T0 - 5,
                    count=4,
                    sum=10.0,
                    quantile_values=[
                        pb.SummaryDataPoint.ValueAtQuantile(quantile=1.0, value=4.0),
                        pb.SummaryDataPoint.ValueAtQuantile(quantile=0.0, value=1.0),
                    ],
                )
            ]
        ),
    ),
    resource={"service.name": "shop", "host.cores": 8},
)


def test_json_and_protobuf_decode_to_the_same_batch() -> None:
    from_protobuf = ProtobufDecoder().decode(RICH.SerializeToString())
    from_json = decode_json(to_json(RICH))
    assert snapshot(from_json.batch) == snapshot(from_protobuf.batch)
    assert (from_json.rejected, from_json.error_message) == (
        from_protobuf.rejected,
        from_protobuf.error_message,
    )
    assert from_json.rejected == 3  # time 0, unspecified temporality, decreasing bounds
    exemplar = from_json.batch.metrics[1].exemplars[0][0]  # type: ignore[index]
    assert exemplar.trace_id == TRACE_ID.hex() and exemplar.span_id == SPAN_ID.hex()


def test_json_spellings_the_specification_allows() -> None:
    document = {
        "resourceMetrics": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "a"}}]
                },
                "scopeMetrics": [
                    {
                        "scope": {"name": "s"},
                        "metrics": [
                            {
                                "name": "c",
                                "sum": {
                                    "aggregationTemporality": "AGGREGATION_TEMPORALITY_DELTA",
                                    "isMonotonic": True,
                                    "dataPoints": [
                                        {
                                            "timeUnixNano": T0,  # a number, not a string
                                            "asInt": "12",
                                            "attributes": [
                                                {"key": "n", "value": {"intValue": 5}},
                                                {"key": "d", "value": {"doubleValue": "-Infinity"}},
                                            ],
                                            "exemplars": [
                                                {
                                                    "timeUnixNano": str(T0),
                                                    "asDouble": "NaN",
                                                    "traceId": TRACE_ID.hex().upper(),
                                                    "spanId": "",
                                                }
                                            ],
                                            "someFutureField": {"ignored": True},
                                        }
                                    ],
                                },
                            }
                        ],
                    }
                ],
            }
        ]
    }
    group = decode_json(json.dumps(document).encode()).batch.metrics[0]
    assert group.metric.is_counter
    assert group.values == [12.0]
    assert group.series[0].attributes == (("d", -math.inf), ("n", 5))
    exemplar = group.exemplars[0][0]  # type: ignore[index]
    assert math.isnan(exemplar.value) and exemplar.trace_id == TRACE_ID.hex()
    assert exemplar.span_id == ""


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b"[]",
        b'{"resourceMetrics": {}}',
        b'{"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": "g", "gauge": 5}]}]}]}',
        b'{"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": "g", "gauge": '
        b'{"dataPoints": [{"timeUnixNano": "1", "asDouble": true}]}}]}]}]}',
        b'{"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": "g", "gauge": '
        b'{"dataPoints": [{"timeUnixNano": "-1"}]}}]}]}]}',
        b'{"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": "g", "gauge": '
        b'{"dataPoints": [{"timeUnixNano": "1", "exemplars": [{"traceId": "xyz"}]}]}}]}]}]}',
        b'{"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": "g", "gauge": {}, '
        b'"sum": {}}]}]}]}',
        b'{"resourceMetrics": [{"resource": {"attributes": [{"key": "k", "value": '
        b'{"stringValue": "a", "intValue": 1}}]}}]}',
        b"\xff\xfe{",
        b"[" * 100_000 + b"]" * 100_000,
    ],
)
def test_malformed_json_raises_decode_error(body: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_json(body)


def test_empty_json_requests() -> None:
    for body in (b"", b"{}", b'{"resourceMetrics": []}'):
        result = decode_json(body)
        assert result.batch.point_count() == 0 and result.rejected == 0


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "resourceMetrics",
                    "scopeMetrics",
                    "metrics",
                    "name",
                    "gauge",
                    "sum",
                    "histogram",
                    "dataPoints",
                    "timeUnixNano",
                    "asDouble",
                    "asInt",
                    "attributes",
                    "key",
                    "value",
                    "stringValue",
                    "arrayValue",
                    "values",
                    "explicitBounds",
                    "bucketCounts",
                    "count",
                    "aggregationTemporality",
                ]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(_json_values)
def test_arbitrary_json_only_raises_decode_error(document: object) -> None:
    with contextlib.suppress(DecodeError):
        decode_json(json.dumps(document).encode())


_attribute_values = st.one_of(
    st.text(max_size=6),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False),
    st.binary(max_size=5),
    st.lists(st.text(max_size=3), max_size=3),
)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.dictionaries(st.text(max_size=5), _attribute_values, max_size=5), min_size=1, max_size=5
    ),
    st.floats(),
)
def test_random_attributes_decode_alike(
    attribute_sets: list[dict[str, object]], value: float
) -> None:
    message = request(gauge("g", *(number(value, attributes) for attributes in attribute_sets)))
    from_protobuf = ProtobufDecoder().decode(message.SerializeToString())
    assert snapshot(decode_json(to_json(message)).batch) == snapshot(from_protobuf.batch)
