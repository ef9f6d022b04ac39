"""The remote-write decoder on its own: caches, metadata, validation, the 2.0 symbols table."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metricgate.model import FLAG_NO_RECORDED_VALUE, MetricKind
from metricgate.receivers.prometheus_remote_write import DecodeError, RemoteWriteDecoder
from metricgate.wire.remotewrite.schema import (
    METRIC_TYPE_COUNTER,
    METRIC_TYPE_GAUGE,
    RequestV2,
    WriteRequest,
)


def request(*names: str, labels: tuple[tuple[str, str], ...] = (("job", "j"),)) -> bytes:
    message = WriteRequest()
    for name in names:
        series = message.timeseries.add()
        series.labels.add(name="__name__", value=name)
        for label, value in labels:
            series.labels.add(name=label, value=value)
        series.samples.add(value=1.0, timestamp=1000)
    data: bytes = message.SerializeToString()
    return data


def test_a_known_series_is_the_same_object_from_the_cache() -> None:
    decoder = RemoteWriteDecoder()
    first = decoder.decode_v1(request("a", "b")).batch
    second = decoder.decode_v1(request("a", "b")).batch
    assert [g.series[0] for g in first] == [g.series[0] for g in second]
    assert all(x.series[0] is y.series[0] for x, y in zip(first, second, strict=True))
    assert first.metrics[0].timestamps == [1_000_000_000]


def test_empty_label_values_are_dropped() -> None:
    decoder = RemoteWriteDecoder()
    [group] = decoder.decode_v1(request("a", labels=(("empty", ""), ("job", "j")))).batch
    assert group.series[0].attributes == (("job", "j"),)


def test_the_cache_is_bounded() -> None:
    decoder = RemoteWriteDecoder(max_series=2)
    decoder.decode_v1(request("a", "b", "c"))
    assert len(decoder._v1) <= 2


def test_garbage_is_a_decode_error() -> None:
    with pytest.raises(DecodeError):
        RemoteWriteDecoder().decode_v1(b"\xff\xff\xff")
    with pytest.raises(DecodeError):
        RemoteWriteDecoder().decode_v2(b"\xff\xff\xff")


def test_v2_metadata_retypes_a_known_series_and_ends_the_old_one() -> None:
    decoder = RemoteWriteDecoder()

    def v2(metric_type: int) -> bytes:
        message = RequestV2(symbols=["", "__name__", "x_total", "job", "j"])
        series = message.timeseries.add(labels_refs=[1, 2, 3, 4])
        series.samples.add(value=1.0, timestamp=5)
        series.metadata.type = metric_type
        data: bytes = message.SerializeToString()
        return data

    [gauge] = decoder.decode_v2(v2(METRIC_TYPE_GAUGE)).batch
    assert gauge.metric.kind is MetricKind.GAUGE
    stale, counter = decoder.decode_v2(v2(METRIC_TYPE_COUNTER)).batch
    assert stale.metric is gauge.metric and stale.flags == [FLAG_NO_RECORDED_VALUE]
    assert counter.metric.is_counter
    assert len(decoder.decode_v2(v2(METRIC_TYPE_COUNTER)).batch.metrics) == 1


def test_created_series_of_a_counter_are_dropped() -> None:
    decoder = RemoteWriteDecoder()
    message = WriteRequest()
    message.metadata.add(metric_family_name="c", type=METRIC_TYPE_COUNTER)
    data: bytes = message.SerializeToString()
    decoder.decode_v1(data)
    batch = decoder.decode_v1(request("c_total", "c_created")).batch
    assert [g.metric.name for g in batch] == ["c_total"]
    assert batch.metrics[0].metric.is_counter


def test_schema_is_wire_compatible_with_prometheus() -> None:
    one = b"\x09\x00\x00\x00\x00\x00\x00\xf0\x3f"  # field 1, double 1.0
    sample = b"\x12\x0b" + one + b"\x10\x05"
    label = b"\x0a\x0e\x0a\x08__name__\x12\x02up"
    v1 = WriteRequest()
    series = v1.timeseries.add()
    series.labels.add(name="__name__", value="up")
    series.samples.add(value=1.0, timestamp=5)
    assert v1.SerializeToString() == b"\x0a\x1d" + label + sample
    v2 = RequestV2(symbols=["", "__name__", "up"])
    series2 = v2.timeseries.add(labels_refs=[1, 2])
    series2.samples.add(value=1.0, timestamp=5)
    symbols = b"\x22\x00\x22\x08__name__\x22\x02up"
    assert v2.SerializeToString() == symbols + b"\x2a\x11\x0a\x02\x01\x02" + sample


def test_a_created_gauge_seen_before_the_counter_metadata_is_ended() -> None:
    decoder = RemoteWriteDecoder()
    decoder.decode_v1(request("c_total", "c_created"))
    message = WriteRequest()
    message.metadata.add(metric_family_name="c_total", type=METRIC_TYPE_COUNTER)
    data: bytes = message.SerializeToString()
    ended = {g.metric.name: g.flags for g in decoder.decode_v1(data).batch}
    assert ended == {"c_total": [FLAG_NO_RECORDED_VALUE], "c_created": [FLAG_NO_RECORDED_VALUE]}
    batch = decoder.decode_v1(request("c_total", "c_created")).batch
    assert [(g.metric.name, g.metric.is_counter) for g in batch] == [("c_total", True)]


def test_a_valid_metric_name_is_not_taken_for_a_valid_label_name() -> None:
    decoder = RemoteWriteDecoder()
    assert decoder.decode_v1(request("a:b")).samples == 1
    result = decoder.decode_v1(request("m", labels=(("a:b", "x"),)))
    assert result.samples == 0 and result.invalid_series == 1
    assert "invalid label name 'a:b'" in result.error_message()


def unsorted_request(*labels: tuple[str, str]) -> tuple[WriteRequest, bytes]:
    message = WriteRequest()
    series = message.timeseries.add()
    for name, value in labels:
        series.labels.add(name=name, value=value)
    series.samples.add(value=1.0, timestamp=1000)
    return message, message.SerializeToString()


def test_unsorted_labels_are_sorted_into_the_same_series() -> None:
    decoder = RemoteWriteDecoder()
    [sorted_group] = decoder.decode_v1(request("m", labels=(("b", "1"), ("c", "2")))).batch
    # The same labels out of order, their pairs already in the label cache, then a new series
    # of the same (unsorted) shape, and the full-parse path (two samples).
    _, body = unsorted_request(("c", "2"), ("__name__", "m"), ("b", "1"))
    result = decoder.decode_v1(body)
    assert result.invalid_series == 0
    assert result.batch.metrics[0].series[0] == sorted_group.series[0]  # the same series
    _, body = unsorted_request(("c", "3"), ("__name__", "m"), ("b", "1"))
    [group] = decoder.decode_v1(body).batch
    assert group.series[0].attributes == (("b", "1"), ("c", "3"))
    message, _ = unsorted_request(("job", "x"), ("__name__", "n"))
    message.timeseries[0].samples.add(value=2.0, timestamp=2000)
    [group] = decoder.decode_v1(message.SerializeToString()).batch
    assert group.metric.name == "n" and group.values == [1.0, 2.0]


def test_series_carry_their_label_names_unless_a_label_was_empty() -> None:
    """`Series.label_names` lets the translator take labels as they are: it must be the
    attribute keys exactly, so it is left out when an empty label was dropped."""
    decoder = RemoteWriteDecoder()
    _, body = unsorted_request(("zone", "z1"), ("__name__", "m"), ("b", "1"))
    [group] = decoder.decode_v1(body).batch
    (series,) = group.series
    assert series.attributes == (("b", "1"), ("zone", "z1"))
    assert series.label_names == ("b", "zone")
    _, body = unsorted_request(("zone", ""), ("__name__", "m"), ("b", "2"))
    [group] = decoder.decode_v1(body).batch
    (series,) = group.series
    assert series.attributes == (("b", "2"),) and series.label_names is None


def test_strict_refuses_unsorted_labels_and_everyone_refuses_duplicates() -> None:
    strict = RemoteWriteDecoder(strict=True)
    strict.decode_v1(request("m", labels=(("b", "1"), ("c", "2"))))
    # The cached pairs and shape of the sorted form do not skip the checks.
    message, body = unsorted_request(("__name__", "m"), ("c", "2"), ("b", "1"))
    unsorted = strict.decode_v1(body)
    assert unsorted.invalid_series == 1 and "unsorted label 'b'" in unsorted.error_message()
    assert "strict" in unsorted.error_message()
    series = message.timeseries[0]
    series.labels[2].name = "c"
    series.labels[2].value = "2"
    for decoder in (strict, RemoteWriteDecoder()):
        duplicate = decoder.decode_v1(message.SerializeToString())
        assert duplicate.invalid_series == 1
        assert "duplicate label 'c' (label names must be unique)" in duplicate.error_message()
    _, body = unsorted_request(("c", "2"), ("__name__", "m"), ("c", "3"))
    duplicate = RemoteWriteDecoder().decode_v1(body)
    assert duplicate.invalid_series == 1 and "duplicate label 'c'" in duplicate.error_message()


def test_v2_labels_out_of_order_are_sorted_too() -> None:
    request_v2 = RequestV2(symbols=["", "job", "x", "__name__", "up"])
    series = request_v2.timeseries.add(labels_refs=[1, 2, 3, 4])
    series.samples.add(value=1.0, timestamp=1000)
    body = request_v2.SerializeToString()
    [group] = RemoteWriteDecoder().decode_v2(body).batch
    assert group.metric.name == "up" and group.series[0].attributes == (("job", "x"),)
    refused = RemoteWriteDecoder(strict=True).decode_v2(body)
    assert refused.invalid_series == 1 and "unsorted label '__name__'" in refused.error_message()


LABEL_NAMES = st.sampled_from(["__name__", "a", "b", "job", "instance", "le", "zz", "A", "_x"])


@settings(max_examples=300, deadline=None)
@given(
    names=st.lists(LABEL_NAMES, min_size=1, max_size=7),
    values=st.lists(st.sampled_from(["v", "w", "up", ""]), min_size=7, max_size=7),
    data=st.data(),
)
def test_any_order_decodes_as_its_sorted_form(
    names: list[str], values: list[str], data: st.DataObject
) -> None:
    labels = [
        (name, values[i] or "up" if name == "__name__" else values[i])
        for i, name in enumerate(names)
    ]
    shuffled = data.draw(st.permutations(labels))
    decoder, strict = RemoteWriteDecoder(), RemoteWriteDecoder(strict=True)
    got = decoder.decode_v1(unsorted_request(*shuffled)[1])
    expected = decoder.decode_v1(unsorted_request(*sorted(labels))[1])
    unique = len(set(names)) == len(names) and "__name__" in names
    assert got.invalid_series == expected.invalid_series == (0 if unique else 1)
    if unique:
        assert got.batch.metrics[0].series == expected.batch.metrics[0].series
    in_order = [name for name, _ in shuffled] == sorted(name for name, _ in shuffled)
    refused = strict.decode_v1(unsorted_request(*shuffled)[1]).invalid_series
    assert refused == (0 if unique and in_order else 1)
