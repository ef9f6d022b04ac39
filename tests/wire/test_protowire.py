"""The shared varint and field helpers against protobuf's own encoding."""

from __future__ import annotations

import pytest
from google.protobuf.internal import decoder, encoder
from hypothesis import given
from hypothesis import strategies as st

from metricgate.wire.protowire import WireError, field, read_varint, skip, varint

INT64 = st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1)


def _protobuf_varint(value: int) -> bytes:
    out: list[bytes] = []
    encoder._SignedVarintEncoder()(out.append, value)  # type: ignore[attr-defined]
    return b"".join(out)


@given(INT64)
def test_varint_is_protobufs_encoding(value: int) -> None:
    assert varint(value) == _protobuf_varint(value)


@given(st.integers(min_value=0, max_value=(1 << 64) - 1), st.binary(max_size=3))
def test_read_varint_reads_back_what_varint_wrote(value: int, after: bytes) -> None:
    data = b"\xff" + varint(value) + after
    assert read_varint(data, 1) == (value, len(data) - len(after))
    assert decoder._DecodeVarint(data, 1) == read_varint(data, 1)  # type: ignore[attr-defined]


@pytest.mark.parametrize("data", [b"", b"\x80", b"\xff\xff", b"\xff" * 10 + b"\x01"])
def test_read_varint_refuses_cut_short_or_too_long(data: bytes) -> None:
    with pytest.raises(WireError):
        read_varint(data, 0)


def test_field_and_skip() -> None:
    encoded = field(3, b"abc") + b"\x08\x96\x01"
    assert encoded[:2] == b"\x1a\x03"
    assert skip(encoded, 1, encoded[0], len(encoded)) == 5
    assert skip(encoded, 6, encoded[5], len(encoded)) == len(encoded)
    with pytest.raises(WireError):
        skip(encoded, 1, encoded[0], 4)
    with pytest.raises(WireError):
        skip(b"\x0b", 1, 0x0B, 1)
