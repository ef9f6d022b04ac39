"""The remote-write 1.0 fast path (known series read in place) gives what a full parse gives.

A decoder sees every request twice: the first time fills its caches through the full parse, the
second takes the fast path wherever it can. Both must equal a reference built from protobuf's own
parse of the request, for any labels, values (0, NaN, StaleNaN, infinities) and timestamps
(0, negative, short and long varints).
"""

from __future__ import annotations

import math
import struct
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from metricgate.model import FLAG_NO_RECORDED_VALUE
from metricgate.receivers.prometheus_remote_write import RemoteWriteDecoder
from metricgate.wire.remotewrite.layout import label_fields, stamp_ns
from metricgate.wire.remotewrite.schema import STALE_NAN_BITS, WriteRequest

STALE = struct.unpack("<d", struct.pack("<Q", STALE_NAN_BITS))[0]

names = st.sampled_from(["job", "instance", "le", "a", "zz", "long_label_name_" + "x" * 120])
values = st.text(alphabet="ab/:é0", min_size=0, max_size=140)
label_sets = st.dictionaries(names, values, max_size=5).map(lambda d: sorted(d.items()))
sample_values = st.one_of(
    st.just(0.0),
    st.just(STALE),
    st.just(math.nan),
    st.floats(allow_nan=False),
)
timestamps = st.one_of(
    st.just(0),
    st.integers(-(2**40), 2**45),
    st.integers(1_600_000_000_000, 1_900_000_000_000),  # 6-byte varints: the fast shape
)
entries = st.lists(
    st.tuples(
        st.sampled_from(["up", "x_total", "m"]),
        label_sets,
        st.lists(st.tuples(sample_values, timestamps), min_size=0, max_size=3),
    ),
    max_size=8,
)


def encode(found: list[tuple[str, list[tuple[str, str]], list[tuple[float, int]]]]) -> bytes:
    request = WriteRequest()
    for name, labels, samples in found:
        series = request.timeseries.add()
        for label, value in sorted([("__name__", name), *labels]):
            series.labels.add(name=label, value=value)
        for value, timestamp in samples:
            series.samples.add(value=value, timestamp=timestamp)
    data: bytes = request.SerializeToString()
    return data


def expected(data: bytes) -> list[tuple[str, tuple[tuple[str, str], ...], bytes, int, int]]:
    """What any decode must give, from protobuf's parse: one row per sample, in request order."""
    rows = []
    for series in WriteRequest.FromString(data).timeseries:
        labels = {label.name: label.value for label in series.labels}
        name = labels.pop("__name__")
        attributes = tuple(sorted((k, v) for k, v in labels.items() if v))
        for sample in series.samples:
            bits = struct.pack("<d", sample.value)
            flags = FLAG_NO_RECORDED_VALUE if bits == struct.pack("<d", STALE) else 0
            rows.append((name, attributes, bits, sample.timestamp * 1_000_000, flags))
    return rows


def decoded(decoder: RemoteWriteDecoder, data: bytes) -> list[tuple[object, ...]]:
    result = decoder.decode_v1(data)
    rows = []
    for group in result.batch:
        for series, value, timestamp, flags in zip(
            group.series, group.values, group.timestamps, group.flags, strict=True
        ):
            rows.append(
                (
                    group.metric.name,
                    series.attributes,
                    struct.pack("<d", value),  # type: ignore[arg-type]
                    timestamp,
                    flags,
                )
            )
    return rows


@settings(max_examples=300, deadline=None)
@given(entries)
def test_the_fast_path_gives_what_the_full_parse_gives(
    found: list[tuple[str, list[tuple[str, str]], list[tuple[float, int]]]],
) -> None:
    data = encode(found)
    want = by_series(expected(data))
    decoder = RemoteWriteDecoder()
    assert by_series(decoded(decoder, data)) == want  # cold: full parse
    assert by_series(decoded(decoder, data)) == want  # warm: fast path where the shape allows


def by_series(rows: list[Any]) -> dict[tuple[object, object], list[tuple[object, ...]]]:
    """Each series' samples in the order decoded: per-series order must hold."""
    out: dict[tuple[object, object], list[tuple[object, ...]]] = {}
    for name, attributes, *sample in rows:
        out.setdefault((name, attributes), []).append(tuple(sample))
    return out


def test_a_known_series_with_one_sample_takes_the_fast_path() -> None:
    decoder = RemoteWriteDecoder()
    data = encode([("up", [("job", "a")], [(2.5, 1_700_000_000_000)])])
    decoder.decode_v1(data)
    calls = []
    decoder._entry_v1 = lambda *args: calls.append(args)  # type: ignore[method-assign]
    [group] = decoder.decode_v1(encode([("up", [("job", "a")], [(0.0, 1_700_000_000_001)])])).batch
    assert group.values == [0.0] and group.timestamps == [1_700_000_000_001_000_000]
    [group] = decoder.decode_v1(encode([("up", [("job", "a")], [(7.0, 1_700_000_000_002)])])).batch
    assert group.values == [7.0]
    assert calls == []


def test_stamp_ns_reads_only_six_byte_varints() -> None:
    ms = 1_700_000_000_123
    varint = bytearray()
    value = ms
    while value > 0x7F:
        varint.append(value & 0x7F | 0x80)
        value >>= 7
    varint.append(value)
    assert len(varint) == 6
    assert stamp_ns(b"\x10" + bytes(varint)) == ms * 1_000_000
    assert stamp_ns(b"\x10\x05") is None
    assert stamp_ns(b"\x11" + bytes(varint)) is None
    assert stamp_ns(b"\x10\x85\x85\x85\x05\x05\x05") is None  # a shorter varint, then more bytes


def test_label_fields_stop_at_the_first_other_field_or_a_truncated_label() -> None:
    payload = b"\x0a\x01a\x12\x00"
    label = b"\x0a\x05" + payload
    assert label_fields(label + label + b"\x12\x00") == (14, [payload, payload])
    assert label_fields(label + b"\x0a\x09\x0a") == (7, [payload])
    assert label_fields(b"") == (0, [])
    long = b"\x0a\x01a\x12\x81\x01" + b"v" * 129
    assert label_fields(b"\x0a\x87\x01" + long) == (3 + len(long), [long])


def test_per_series_order_holds_when_fast_and_full_parses_mix() -> None:
    # The same series three times in one request: a StaleNaN (full parse), then values (fast).
    data = encode(
        [
            ("up", [("job", "a")], [(STALE, 1_700_000_000_000)]),
            ("up", [("job", "a")], [(1.0, 1_700_000_000_001)]),
            ("up", [("job", "a")], [(2.0, 1_700_000_000_002), (3.0, 1_700_000_000_003)]),
            ("up", [("job", "a")], [(4.0, 1_700_000_000_004)]),
        ]
    )
    decoder = RemoteWriteDecoder()
    for _ in range(2):
        [group] = decoder.decode_v1(data).batch
        assert group.timestamps == [(1_700_000_000_000 + i) * 1_000_000 for i in range(5)]
        assert group.flags[0] == FLAG_NO_RECORDED_VALUE and group.values[1:] == [1.0, 2.0, 3.0, 4.0]
