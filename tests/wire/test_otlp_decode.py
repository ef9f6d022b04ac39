"""The protobuf decoder: every metric type, the rejection rules, the caches, fuzzing."""

from __future__ import annotations

import contextlib
import math
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb

from metricgate.model import (
    BucketRange,
    Exemplar,
    ExponentialHistogramPoint,
    HistogramPoint,
    MetricKind,
    Series,
    SummaryPoint,
    Temporality,
)
from metricgate.model.caches import release_caches
from metricgate.wire.otlp import decode as otlp_decode
from metricgate.wire.otlp import points as otlp_points
from metricgate.wire.otlp.decode import ProtobufDecoder, encoded_attributes
from metricgate.wire.otlp.points import DecodeError
from tests.receivers.otlp_data import (
    DELTA,
    SPAN_ID,
    T0,
    TRACE_ID,
    decoded_number_points,
    gauge,
    key_values,
    number,
    reference_number_points,
    reorder_number_point,
    request,
    sum_metric,
    sum_with_raw_points,
)
from tests.support.otlp_points import attribute_lists, number_data_points


def decode(message: object, decoder: ProtobufDecoder | None = None):  # type: ignore[no-untyped-def]
    decoder = decoder if decoder is not None else ProtobufDecoder()  # an empty one is falsy
    return decoder.decode(message.SerializeToString())  # type: ignore[attr-defined]


def only_group(result):  # type: ignore[no-untyped-def]
    assert len(result.batch.metrics) == 1
    return result.batch.metrics[0]


def test_gauge_and_sums_with_descriptors_and_values() -> None:
    message = request(
        gauge("temperature", number(21.5, {"room": "a"}), unit="Cel"),
        sum_metric("requests", number(5, {"route": "/"}), monotonic=True),
        sum_metric("inflight", number(-2.0), temporality=DELTA, monotonic=False),
        resource={"service.name": "shop", "service.instance.id": "i-1"},
    )
    result = decode(message)
    assert result.rejected == 0 and result.error_message == ""
    temperature, requests, inflight = result.batch.metrics
    metric = temperature.metric
    assert (metric.name, metric.unit, metric.kind) == ("temperature", "Cel", MetricKind.GAUGE)
    assert (metric.temporality, metric.monotonic) == (Temporality.UNSPECIFIED, False)
    assert metric.resource.attributes == (("service.instance.id", "i-1"), ("service.name", "shop"))
    assert (metric.scope.name, metric.scope.version) == ("test.scope", "1.0")
    assert temperature.series[0].attributes == (("room", "a"),)
    assert temperature.values == [21.5]
    assert temperature.timestamps == [T0] and temperature.start_timestamps == [T0 - 10**9]
    assert requests.metric.kind is MetricKind.SUM and requests.metric.monotonic
    assert requests.metric.temporality is Temporality.CUMULATIVE
    assert requests.values == [5.0] and isinstance(requests.values[0], float)
    assert inflight.metric.temporality is Temporality.DELTA and not inflight.metric.monotonic
    assert inflight.values == [-2.0]
    for group in result.batch:
        assert all(s.metric is group.metric for s in group.series)


def test_attribute_value_types() -> None:
    attributes = {
        "s": "text",
        "b": True,
        "i": -7,
        "d": 0.25,
        "a": ["x", 1, [False]],
        "kv": {"z": 1, "y": {"inner": "v"}},
        "raw": b"\x00\xff",
        "empty": None,
    }
    group = only_group(decode(request(gauge("g", number(1.0, attributes)))))
    assert group.series[0].attributes == (
        ("a", ("x", 1, (False,))),
        ("b", True),
        ("d", 0.25),
        ("empty", None),
        ("i", -7),
        ("kv", (("y", (("inner", "v"),)), ("z", 1))),
        ("raw", "AP8="),
        ("s", "text"),
    )


def test_attribute_order_and_duplicates_map_to_one_series() -> None:
    decoder = ProtobufDecoder()
    forward = number(1.0, {"a": "1", "b": "2"})
    backward = pb.NumberDataPoint(time_unix_nano=T0, as_double=2.0)
    backward.attributes.extend(key_values([("b", "2"), ("a", "1")]))
    duplicated = pb.NumberDataPoint(time_unix_nano=T0, as_double=3.0)
    duplicated.attributes.extend(key_values([("a", "0"), ("b", "2"), ("a", "1")]))
    group = only_group(decode(request(gauge("g", forward, backward, duplicated)), decoder))
    assert group.series[0] == group.series[1] == group.series[2]
    assert group.series[0] == Series(group.metric, (("a", "1"), ("b", "2")))
    again = only_group(decode(request(gauge("g", backward, forward)), decoder))
    assert (again.series[0], again.series[1]) == (group.series[1], group.series[0])
    assert again.series[0] is group.series[1]  # each encoding is cached


def test_histogram_bounds_shared_per_metric() -> None:
    points = [
        pb.HistogramDataPoint(
            attributes=key_values({"k": str(i)}),
            time_unix_nano=T0,
            start_time_unix_nano=T0 - 1,
            count=3,
            sum=4.5,
            bucket_counts=[1, 2, 0],
            explicit_bounds=[1.0, 5.0],
            min=0.5,
            max=3.0,
        )
        for i in range(3)
    ]
    no_sum = pb.HistogramDataPoint(time_unix_nano=T0, count=0, explicit_bounds=[1.0, 5.0])
    metric = pb.Metric(
        name="latency",
        unit="s",
        histogram=pb.Histogram(data_points=[*points, no_sum], aggregation_temporality=DELTA),
    )
    group = only_group(decode(request(metric)))
    assert group.metric.kind is MetricKind.HISTOGRAM
    assert group.metric.temporality is Temporality.DELTA and not group.metric.monotonic
    assert group.values[0] == HistogramPoint(3, 4.5, (1.0, 5.0), (1, 2, 0), 0.5, 3.0)
    assert group.values[3] == HistogramPoint(0, None, (1.0, 5.0), (), None, None)
    bounds = {id(v.bounds) for v in group.values}  # type: ignore[union-attr]
    assert len(bounds) == 1


def test_exponential_histogram_and_summary() -> None:
    exponential = pb.Metric(
        name="size",
        exponential_histogram=pb.ExponentialHistogram(
            aggregation_temporality=DELTA,
            data_points=[
                pb.ExponentialHistogramDataPoint(
                    time_unix_nano=T0,
                    count=6,
                    sum=12.0,
                    scale=3,
                    zero_count=1,
                    zero_threshold=0.001,
                    positive=pb.ExponentialHistogramDataPoint.Buckets(
                        offset=-2, bucket_counts=[1, 2]
                    ),
                    negative=pb.ExponentialHistogramDataPoint.Buckets(offset=4, bucket_counts=[2]),
                    min=-9.0,
                    max=7.0,
                )
            ],
        ),
    )
    summary = pb.Metric(
        name="rpc",
        summary=pb.Summary(
            data_points=[
                pb.SummaryDataPoint(
                    time_unix_nano=T0,
                    count=10,
                    sum=55.0,
                    quantile_values=[
                        pb.SummaryDataPoint.ValueAtQuantile(quantile=0.99, value=9.0),
                        pb.SummaryDataPoint.ValueAtQuantile(quantile=0.5, value=5.0),
                    ],
                )
            ]
        ),
    )
    size, rpc = decode(request(exponential, summary)).batch.metrics
    assert size.metric.kind is MetricKind.EXPONENTIAL_HISTOGRAM
    assert size.values == [
        ExponentialHistogramPoint(
            6, 12.0, 3, 1, BucketRange(-2, (1, 2)), BucketRange(4, (2,)), 0.001, -9.0, 7.0
        )
    ]
    assert rpc.metric.kind is MetricKind.SUMMARY
    assert rpc.metric.temporality is Temporality.UNSPECIFIED
    assert rpc.values == [SummaryPoint(10, 55.0, ((0.5, 5.0), (0.99, 9.0)))]


def test_exemplars_and_flags() -> None:
    exemplar = pb.Exemplar(
        time_unix_nano=T0 - 5,
        as_int=3,
        trace_id=TRACE_ID,
        span_id=SPAN_ID,
        filtered_attributes=key_values({"user": "u1"}),
    )
    with_exemplar = number(1.0, {"k": "v"}, exemplars=[exemplar])
    stale = number(9.0, {"k": "v"}, flags=pb.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK)
    plain = number(2.0, {"k": "v"})
    group = only_group(decode(request(sum_metric("c", with_exemplar, stale, plain))))
    assert group.exemplars == {
        0: (
            Exemplar(
                3.0,
                T0 - 5,
                "5b8efff798038103d269b633813fc60c",
                "eee19b7ec3c1b174",
                (("user", "u1"),),
            ),
        )
    }
    assert group.flags == [0, 1, 0]
    assert math.isnan(group.values[1]) and group.values[2] == 2.0  # type: ignore[arg-type]
    histogram = pb.Metric(
        name="h",
        histogram=pb.Histogram(
            aggregation_temporality=DELTA,
            data_points=[
                pb.HistogramDataPoint(
                    time_unix_nano=T0,
                    count=1,
                    bucket_counts=[1],
                    exemplars=[pb.Exemplar(time_unix_nano=T0, as_double=0.5)],
                ),
                # stale and inconsistent: kept, as an empty point, flags carried
                pb.HistogramDataPoint(time_unix_nano=T0, count=5, bucket_counts=[1], flags=1),
            ],
        ),
    )
    result = decode(request(histogram))
    group = only_group(result)
    assert result.rejected == 0
    assert group.exemplars == {0: (Exemplar(0.5, T0),)}
    assert group.flags == [0, 1]
    assert group.values[1] == HistogramPoint(0, None, (), ())


def test_nan_and_infinities_are_kept() -> None:
    values = [math.nan, math.inf, -math.inf]
    points = [number(v, {"i": i}) for i, v in enumerate(values)]
    result = decode(request(gauge("g", *points), sum_metric("s", *points)))
    assert result.rejected == 0
    for group in result.batch:
        assert math.isnan(group.values[0])  # type: ignore[arg-type]
        assert group.values[1:] == [math.inf, -math.inf]


@pytest.mark.parametrize(
    ("metric", "reason"),
    [
        (gauge("", number(1.0), number(2.0)), "metric has no name"),
        (sum_metric("s", number(1.0), number(2.0), temporality=0), "temporality"),
        (sum_metric("s", number(1.0), number(2.0), temporality=7), "temporality"),
        (gauge("g", number(1.0, time=0), number(2.0, time=0)), "time_unix_nano is 0"),
    ],
)
def test_rejected_metrics(metric: pb.Metric, reason: str) -> None:
    result = decode(request(metric, gauge("fine", number(3.0))))
    assert result.rejected == 2
    assert reason in result.error_message
    assert [g.metric.name for g in result.batch] == ["fine"]


def _histogram(**fields: object) -> pb.Metric:
    point = pb.HistogramDataPoint(time_unix_nano=T0, **fields)  # type: ignore[arg-type]
    return pb.Metric(
        name="h", histogram=pb.Histogram(data_points=[point], aggregation_temporality=DELTA)
    )


@pytest.mark.parametrize(
    ("metric", "reason"),
    [
        (_histogram(count=3, bucket_counts=[1, 2], explicit_bounds=[1, 2]), "length"),
        (_histogram(count=3, bucket_counts=[1, 1, 1], explicit_bounds=[2, 1]), "increasing"),
        (_histogram(count=3, bucket_counts=[1, 1, 1], explicit_bounds=[1, 1]), "increasing"),
        (_histogram(count=2, bucket_counts=[1, 1], explicit_bounds=[math.nan]), "finite"),
        (_histogram(count=2, bucket_counts=[1, 1], explicit_bounds=[math.inf]), "finite"),
        (_histogram(count=9, bucket_counts=[1, 1], explicit_bounds=[1]), "sum of bucket"),
        (
            pb.Metric(
                name="x",
                exponential_histogram=pb.ExponentialHistogram(
                    aggregation_temporality=DELTA,
                    data_points=[pb.ExponentialHistogramDataPoint(time_unix_nano=T0, scale=21)],
                ),
            ),
            "scale",
        ),
        (
            pb.Metric(
                name="x",
                exponential_histogram=pb.ExponentialHistogram(
                    aggregation_temporality=DELTA,
                    data_points=[pb.ExponentialHistogramDataPoint(time_unix_nano=T0, count=2)],
                ),
            ),
            "zero_count",
        ),
        (
            pb.Metric(
                name="q",
                summary=pb.Summary(
                    data_points=[
                        pb.SummaryDataPoint(
                            time_unix_nano=T0,
                            quantile_values=[
                                pb.SummaryDataPoint.ValueAtQuantile(quantile=1.5, value=1)
                            ],
                        )
                    ]
                ),
            ),
            "quantile",
        ),
    ],
)
def test_rejected_points(metric: pb.Metric, reason: str) -> None:
    result = decode(request(metric, gauge("fine", number(3.0))))
    assert result.rejected == 1
    assert reason in result.error_message
    assert [g.metric.name for g in result.batch] == ["fine"]


def test_same_metric_twice_in_a_request_is_one_group() -> None:
    message = request(gauge("g", number(1.0, {"a": "1"})), gauge("g", number(2.0, {"a": "2"})))
    group = only_group(decode(message))
    assert group.values == [1.0, 2.0]


@pytest.mark.parametrize(
    "order",
    [
        [2, 3, 4, 5, 6, 7, 8],  # field-number order, as upb, Go, Java, JS write it
        [2, 3, 4, 6, 5, 7, 8],
        [7, 2, 3, 4, 6, 5, 8],  # attributes first, as prost (Rust) writes it
        [8, 7, 6, 5, 4, 3, 2],
        [3, 2, 6, 4, 7, 5, 8],
    ],
)
@pytest.mark.parametrize(
    "point",
    [
        number(1.5, {"a": "x", "b": 2}),
        number(7, {"a": "x"}),
        number(2.5, {"a": "x"}, start=0),
        number(-3, {}, start=0),
        number(1.0, {"a": "x"}, flags=1),
        number(1.0, {"a": "x"}, exemplars=[pb.Exemplar(time_unix_nano=T0, as_double=2.0)]),
        number(4, {"a": "x"}, exemplars=[pb.Exemplar(time_unix_nano=T0, as_int=2)]),
    ],
)
def test_any_field_order_decodes_the_same(order: list[int], point: pb.NumberDataPoint) -> None:
    decoder = ProtobufDecoder()
    expected = reference_number_points(request(sum_metric("m", point)))
    raw = reorder_number_point(point, order)
    for _ in range(3):  # cold, then from the caches
        result = decoder.decode(sum_with_raw_points("m", [raw]))
        assert decoded_number_points(result.batch) == expected


def test_tail_with_a_second_time_field_is_not_trusted() -> None:
    """A tail that overrides the time (last field wins) must never become a cache key."""
    point = number(1.0, {"a": "x"})
    later = struct.pack("<Q", T0 + 99)
    raw = point.SerializeToString() + b"\x19" + later
    decoder = ProtobufDecoder()
    for _ in range(2):
        group = decoder.decode(sum_with_raw_points("m", [raw])).batch.metrics[0]
        assert group.timestamps == [T0 + 99]


def test_caches_are_bounded() -> None:
    decoder = ProtobufDecoder(max_series=50)
    for round_no in range(5):
        points = [number(1.0, {"i": f"{round_no}-{i}"}) for i in range(40)]
        result = decoder.decode(request(gauge("g", *points)).SerializeToString())
        assert result.batch.point_count() == 40
        assert decoder.cached_entries <= 50


@settings(max_examples=200, deadline=None)
@given(attribute_lists, st.text(min_size=120, max_size=140))
def test_encoded_attributes_decode_like_the_messages(
    attributes: list[tuple[str, object]], long_value: str
) -> None:
    messages = key_values([*attributes, ("long", long_value)])
    raws = [m.SerializeToString() for m in messages]
    expected = otlp_decode.key_values(messages)
    assert encoded_attributes(raws) == expected  # maybe cold
    again = encoded_attributes(raws)  # warm: the short ones are lookups now
    assert again == expected
    third = encoded_attributes(raws)  # every pair seen before: shared
    assert [a is b for a, b in zip(third, again, strict=True)] == [True] * len(expected)
    release_caches()
    assert encoded_attributes(list(reversed(raws))) == otlp_decode.key_values(
        list(reversed(messages))
    )


def test_a_pair_is_shared_from_its_second_sight_and_a_unique_one_never() -> None:
    release_caches()
    first = otlp_points.shared_pair("request.id", "r-1")
    second = otlp_points.shared_pair("request.id", "r-1")
    assert first == second == ("request.id", "r-1") and first is not second
    assert otlp_points.shared_pair("request.id", "r-1") is second  # shared from now on
    assert otlp_points.shared_pair("request.id", "r-2") == ("request.id", "r-2")
    assert ("request.id", "r-2") not in otlp_points._SHARED_PAIRS.entries  # seen once only
    assert ("request.id", "r-1") in otlp_points._SHARED_PAIRS.entries


def test_decoded_attributes_are_bounded_and_short_ones_only() -> None:
    release_caches()
    table = otlp_decode._DECODED_PAIRS.entries
    long = key_values([("k", "v" * otlp_decode.MAX_DECODED_PAIR_BYTES)])[0].SerializeToString()
    encoded_attributes([long])
    assert not table
    raws = [
        m.SerializeToString()
        for m in key_values([(f"k{i}", i) for i in range(otlp_decode.MAX_DECODED_PAIRS + 10)])
    ]
    for raw in raws:
        encoded_attributes([raw])
        assert len(table) <= otlp_decode.MAX_DECODED_PAIRS
    assert 0 < len(table) <= 10


def test_empty_and_pointless_requests() -> None:
    decoder = ProtobufDecoder()
    assert not decoder.decode(b"").batch.metrics
    result = decoder.decode(request(gauge("g"), pb.Metric(name="nodata")).SerializeToString())
    assert result.batch.point_count() == 0 and result.rejected == 0


def test_malformed_protobuf_raises_decode_error() -> None:
    decoder = ProtobufDecoder()
    with pytest.raises(DecodeError):
        decoder.decode(b"\x0a\xff\xff")
    bad_attribute = pb.NumberDataPoint(time_unix_nano=T0).SerializeToString() + b"\x3a\x03\x0a\x02"
    with pytest.raises(DecodeError):
        decoder.decode(sum_with_raw_points("m", [bad_attribute]))
    bad_utf8 = (
        b"\x3a\x05\x0a\x03\xff\xfe\xfd" + pb.NumberDataPoint(time_unix_nano=T0).SerializeToString()
    )
    with pytest.raises(DecodeError):
        decoder.decode(sum_with_raw_points("m", [bad_utf8]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(number_data_points, min_size=1, max_size=4), min_size=1, max_size=3))
def test_random_points_decode_like_the_reference(metrics: list[list[pb.NumberDataPoint]]) -> None:
    message = request(*(sum_metric(f"m{i}", *points) for i, points in enumerate(metrics)))
    expected = reference_number_points(message)
    decoder = ProtobufDecoder()
    for _ in range(2):  # cold, then warm caches
        assert decoded_number_points(decoder.decode(message.SerializeToString()).batch) == expected


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_only_raise_decode_error(body: bytes) -> None:
    with contextlib.suppress(DecodeError):
        ProtobufDecoder().decode(body)


_VALID = request(
    gauge("g", number(1.0, {"a": "x"}), number(2, {"b": [1, 2]})),
    sum_metric("s", number(3.0, exemplars=[pb.Exemplar(time_unix_nano=T0, as_int=1)])),
    _histogram(count=3, bucket_counts=[1, 2], explicit_bounds=[1.0], sum=2.0),
).SerializeToString()


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_corrupted_requests_only_raise_decode_error(data: st.DataObject) -> None:
    body = bytearray(_VALID)
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(body) - 1))
        body[index] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(body)))
    decoder = ProtobufDecoder()
    for candidate in (bytes(body), bytes(body[:cut])):
        with contextlib.suppress(DecodeError):
            decoder.decode(candidate)


class _CountingPoint:
    """Stands in for the schema's NumberDataPoint to count slow-path parses."""

    parses = 0

    @classmethod
    def FromString(cls, raw: bytes) -> object:
        from metricgate.wire.otlp.schema import NumberDataPoint

        cls.parses += 1
        return NumberDataPoint.FromString(raw)


def test_known_series_take_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("metricgate.wire.otlp.decode.NumberDataPoint", _CountingPoint)
    points = [number(1.5, {"a": str(i)}) for i in range(5)]
    points += [number(3, {"b": str(i)}, start=0) for i in range(5)]
    body = request(sum_metric("s", *points), gauge("g", *points)).SerializeToString()
    decoder = ProtobufDecoder()
    first = decoder.decode(body)
    assert _CountingPoint.parses == 20
    second = decoder.decode(body)
    assert _CountingPoint.parses == 20, "a known series must not be parsed again"
    assert decoded_number_points(first.batch) == decoded_number_points(second.batch)
    exemplar = pb.Exemplar(time_unix_nano=T0, as_double=1.0, trace_id=TRACE_ID)
    for point in points:
        point.exemplars.append(exemplar)
    with_exemplars = request(sum_metric("s", *points), gauge("g", *points))
    third = decoder.decode(with_exemplars.SerializeToString())
    assert _CountingPoint.parses == 20, "exemplars must not force a full parse"
    without_exemplars = [found[:-1] for found in decoded_number_points(third.batch)]
    assert without_exemplars == [found[:-1] for found in decoded_number_points(first.batch)]
    assert third.batch.metrics[0].exemplars == {
        i: (Exemplar(1.0, T0, TRACE_ID.hex()),) for i in range(10)
    }
