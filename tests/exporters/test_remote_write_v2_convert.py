"""The 1.0 -> 2.0 body converter: same series and samples, exact bytes, StaleNaN bits untouched."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metricgate.model import MetricKind
from metricgate.wire.remotewrite.schema import HistogramV2, RequestV2, WriteRequest
from metricgate.wire.remotewrite.v2 import ConversionError, to_v2
from tests.support.batches import number_batch
from tests.support.remote_write import STALE_BITS, bounds_batch, encoder, fragments_body

NAN_BITS = 0x7FF8000000000001
SPECIAL_BITS = [STALE_BITS, NAN_BITS, 0, 1 << 63, 0x7FF0000000000000, 0x3FF0000000000000]

Label = tuple[str, str]
SampleSpec = tuple[int, int]
"""(value as its 64 bits, timestamp ms)."""


def as_float(bits: int) -> float:
    value: float = struct.unpack("<d", struct.pack("<Q", bits))[0]
    return value


def bits_of(value: float) -> int:
    found: int = struct.unpack("<Q", struct.pack("<d", value))[0]
    return found


text = st.text(max_size=12)
labels = st.lists(st.tuples(text, text), max_size=6)
value_bits = st.one_of(
    st.sampled_from(SPECIAL_BITS),
    st.integers(0, (1 << 64) - 1),
    st.floats(allow_nan=False).map(bits_of),
)
timestamps = st.one_of(st.just(0), st.integers(-(1 << 63), (1 << 63) - 1), st.integers(0, 1 << 42))
samples = st.lists(st.tuples(value_bits, timestamps), max_size=4)
exemplars = st.lists(st.tuples(labels, value_bits, timestamps), max_size=2)
histograms = st.lists(
    st.tuples(st.integers(0, 1 << 40), st.floats(allow_nan=False), st.lists(st.integers(-50, 50))),
    max_size=2,
)
series = st.tuples(labels, samples, exemplars, histograms)


def v1_request(entries: list[Any]) -> Any:
    request = WriteRequest()
    for series_labels, series_samples, series_exemplars, series_histograms in entries:
        message = request.timeseries.add()
        for name, value in series_labels:
            message.labels.add(name=name, value=value)
        for bits, timestamp in series_samples:
            message.samples.add(value=as_float(bits), timestamp=timestamp)
        for exemplar_labels, bits, timestamp in series_exemplars:
            exemplar = message.exemplars.add(value=as_float(bits), timestamp=timestamp)
            for name, value in exemplar_labels:
                exemplar.labels.add(name=name, value=value)
        for count, total, deltas in series_histograms:
            message.histograms.add(count_int=count, sum=total, positive_deltas=deltas, schema=3)
    return request


def expected_v2(request: Any) -> Any:
    """The 2.0 message built with the schema's classes: the reference the converter must match."""
    symbols: dict[str, int] = {"": 0}

    def refs(pairs: Any) -> list[int]:
        out = []
        for label in pairs:
            for part in (label.name, label.value):
                out.append(symbols.setdefault(part, len(symbols)))
        return out

    result = RequestV2()
    for message in request.timeseries:
        converted = result.timeseries.add(labels_refs=refs(message.labels))
        for sample in message.samples:
            converted.samples.add(value=sample.value, timestamp=sample.timestamp)
        for histogram in message.histograms:
            converted.histograms.append(HistogramV2.FromString(histogram.SerializeToString()))
        for exemplar in message.exemplars:
            converted.exemplars.add(
                labels_refs=refs(exemplar.labels),
                value=exemplar.value,
                timestamp=exemplar.timestamp,
            )
    result.symbols.extend(symbols)
    return result


def series_of_v1(request: Any) -> list[Any]:
    return [
        (
            [(label.name, label.value) for label in message.labels],
            [(bits_of(s.value), s.timestamp) for s in message.samples],
            [
                ([(x.name, x.value) for x in e.labels], bits_of(e.value), e.timestamp)
                for e in message.exemplars
            ],
            [h.SerializeToString() for h in message.histograms],
        )
        for message in request.timeseries
    ]


def series_of_v2(request: Any) -> list[Any]:
    symbols = list(request.symbols)

    def pairs(refs: Any) -> list[tuple[str, str]]:
        assert len(refs) % 2 == 0
        return [(symbols[refs[i]], symbols[refs[i + 1]]) for i in range(0, len(refs), 2)]

    assert symbols[0] == ""
    return [
        (
            pairs(message.labels_refs),
            [(bits_of(s.value), s.timestamp) for s in message.samples],
            [(pairs(e.labels_refs), bits_of(e.value), e.timestamp) for e in message.exemplars],
            [h.SerializeToString() for h in message.histograms],
        )
        for message in request.timeseries
    ]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(series, max_size=8))
def test_v2_carries_the_same_series_and_bytes_as_protobuf(entries: list[Any]) -> None:
    request = v1_request(entries)
    body = request.SerializeToString()
    converted = to_v2(body)
    decoded = RequestV2.FromString(converted)
    assert series_of_v2(decoded) == series_of_v1(request)
    assert converted == expected_v2(request).SerializeToString()
    assert len(set(decoded.symbols)) == len(decoded.symbols)
    # Label blocks seen once take the fast split the second time: same bytes.
    assert to_v2(body) == converted


def test_stale_nan_bytes_are_copied_exactly() -> None:
    stale = struct.pack("<Q", STALE_BITS)
    request = v1_request([([("__name__", "up")], [(STALE_BITS, 1), (NAN_BITS, 2)], [], [])])
    body = request.SerializeToString()
    assert stale in body
    converted = to_v2(body)
    assert stale in converted and struct.pack("<Q", NAN_BITS) in converted
    [series_message] = RequestV2.FromString(converted).timeseries
    assert [bits_of(s.value) for s in series_message.samples] == [STALE_BITS, NAN_BITS]


def test_encoder_output_converts_with_shared_symbols() -> None:
    enc = encoder()
    batch = number_batch(
        {"a": 1.0, "b": 0.0, "c": float("nan")}, name="g", kind=MetricKind.GAUGE, timestamp=10**18
    )
    per_shard, _ = enc.encode(batch, 1, 0.0)
    body = fragments_body(per_shard)
    converted = to_v2(body)
    assert converted == expected_v2(WriteRequest.FromString(body)).SerializeToString()
    assert to_v2(body) == converted
    decoded = RequestV2.FromString(converted)
    assert len(decoded.timeseries) == 3
    assert list(decoded.symbols).count("__name__") == 1


def test_metadata_is_left_out_and_empty_request_has_the_empty_symbol() -> None:
    request = WriteRequest()
    request.metadata.add(metric_family_name="up", type=2, help="h")
    assert to_v2(request.SerializeToString()) == RequestV2(symbols=[""]).SerializeToString()


@pytest.mark.parametrize(
    "body",
    [
        b"\x0a\x05\x0a\x03",  # series longer than the body
        b"\x0a\x02\x12",  # truncated varint
        b"\x0a\x04\x12\x00\x0a\x00",  # a label after a sample
        b"\x0b",  # wire type 3 (groups)
    ],
)
def test_unreadable_bodies_raise(body: bytes) -> None:
    with pytest.raises(ConversionError):
        to_v2(body)


def test_label_bytes_that_look_like_a_sample_do_not_fool_the_fast_split() -> None:
    tricky = "v\x12\x10" + "z" * 16
    entries = [
        ([("__name__", "a")], [(bits_of(1.0), 1 << 40)], [], []),
        ([("__name__", "a"), ("b", tricky)], [(bits_of(2.0), 1 << 40)], [], []),
        ([("__name__", "a"), ("b", "\x12\x07")], [(0, 5)], [], []),
        ([("__name__", "a"), ("b", "\x12\x07")], [(bits_of(3.0), 0)], [], []),
    ]
    body = v1_request(entries).SerializeToString()
    expected = expected_v2(v1_request(entries)).SerializeToString()
    assert to_v2(body) == expected
    assert to_v2(body) == expected


def test_bounds_and_quantiles_keep_their_spelling_in_2_0() -> None:
    per_shard, _ = encoder().encode(bounds_batch(), 1, 0.0)
    decoded = RequestV2.FromString(to_v2(fragments_body(per_shard)))
    symbols = list(decoded.symbols)
    spelled = sorted(
        symbols[series.labels_refs[i + 1]]
        for series in decoded.timeseries
        for i in range(0, len(series.labels_refs), 2)
        if symbols[series.labels_refs[i]] in ("le", "quantile")
    )
    assert spelled == sorted(["0.005", "1", "10", "1e+06", "+Inf", "0.5", "0.9", "1", "2", "+Inf"])
