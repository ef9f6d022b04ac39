"""Remote-write 1.0 `timeseries` entries, hand-encoded from per-series cached label bytes.

A `WriteRequest` is a run of `timeseries` entries (field 1), each a `TimeSeries` holding its labels
(field 1, repeated `Label{name=1, value=2}`) and samples (field 2, `Sample{value=1 double,
timestamp=2 int64}`). We send one sample per entry, so an entry is the series' label block plus a
16-byte sample: everything but the 8 value bytes and the timestamp varint is a cached `head`.
The remote-write exporter appends these entries to the per-shard fragments it sends.

Invariant: the bytes are exactly what protobuf's `SerializeToString` writes for the same message
(proto3: zero values and empty fields omitted), checked against `wire.remotewrite.schema`.
StaleNaN travels as its exact bit pattern and never becomes a Python float, which could quiet it.
"""

from __future__ import annotations

import struct
from typing import Final

from metricgate.wire.protowire import field, varint

pack_double: Final = struct.Struct("<d").pack
ZERO_DOUBLE: Final = bytes(8)
STALE_NAN: Final = struct.pack("<Q", 0x7FF0000000000002)
"""Prometheus' staleness marker as the 8 bytes of a `Sample.value`."""

_SAMPLE_HEAD_LEN: Final = 16
"""A sample with a non-zero value and a 6-byte timestamp varint (any date 2004-2112)."""


_SAMPLE_HEAD: Final = b"\x12" + bytes((_SAMPLE_HEAD_LEN,)) + b"\x09"
"""The `samples` field of a 16-byte sample, up to its value."""

_SIX_BYTES: Final = 1 << 35
_SEVEN_BYTES: Final = 1 << 42
_MAX_CACHED_PAIRS: Final = 200_000
_pairs: dict[tuple[str, str], bytes] = {}
"""Encoded `Label` entries: label pairs repeat across series (job, scope, method, status...)."""


def label_block(labels: list[tuple[str, str]]) -> bytes:
    """The `labels` field entries of a `TimeSeries`, for labels already sorted and non-empty."""
    get = _pairs.get
    parts = []
    for pair in labels:
        encoded = get(pair)
        if encoded is None:
            name, value = pair
            encoded = field(1, field(1, name.encode()) + field(2, value.encode()))
            if len(_pairs) >= _MAX_CACHED_PAIRS:
                _pairs.clear()
            _pairs[pair] = encoded
        parts.append(encoded)
    return b"".join(parts)


def timestamp_tail(ms: int) -> bytes:
    """The `Sample.timestamp` field for `ms` (empty for 0, which proto3 omits)."""
    if _SIX_BYTES <= ms < _SEVEN_BYTES:  # any date 2004-2112: the 6-byte varint, unrolled
        return bytes(
            (
                0x10,
                ms & 0x7F | 0x80,
                ms >> 7 & 0x7F | 0x80,
                ms >> 14 & 0x7F | 0x80,
                ms >> 21 & 0x7F | 0x80,
                ms >> 28 & 0x7F | 0x80,
                ms >> 35,
            )
        )
    return b"\x10" + varint(ms) if ms else b""


class EncodedSeries:
    """One output series' cached encoding: the entry head for a 16-byte sample (see module
    docstring). Only the head is kept; the label block is a slice of it, for the rare entry
    that needs another shape."""

    __slots__ = ("head",)

    def __init__(self, labels: bytes) -> None:
        self.head: Final = b"".join(
            (b"\x0a", varint(len(labels) + 2 + _SAMPLE_HEAD_LEN), labels, _SAMPLE_HEAD)
        )

    @property
    def labels(self) -> bytes:
        """The series' label block."""
        head = self.head
        start = 2
        while head[start - 1] >= 0x80:  # the entry length varint
            start += 1
        return head[start : -len(_SAMPLE_HEAD)]

    def append(self, out: bytearray, value: bytes, tail: bytes) -> None:
        """Append one `timeseries` entry: `value` is 8 packed bytes, `tail` a `timestamp_tail`."""
        if len(tail) == 7 and value != ZERO_DOUBLE:
            out += self.head
            out += value
            out += tail
            return
        out += self.entry(value, tail)

    def entry(self, value: bytes, tail: bytes) -> bytes:
        """The whole `timeseries` entry for any value and timestamp (it ends with `tail`)."""
        sample = (b"\x09" + value if value != ZERO_DOUBLE else b"") + tail
        return field(1, self.labels + field(2, sample))
