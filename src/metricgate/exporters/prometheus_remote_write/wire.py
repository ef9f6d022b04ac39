"""Remote-write 1.0 protobuf, hand-encoded from per-series cached label bytes.

A `WriteRequest` is a run of `timeseries` entries (field 1), each a `TimeSeries` holding its labels
(field 1, repeated `Label{name=1, value=2}`) and samples (field 2, `Sample{value=1 double,
timestamp=2 int64}`). We send one sample per entry, so an entry is the series' label block plus a
16-byte sample: everything but the 8 value bytes and the timestamp varint is a cached `head`.
`Builder` collects one shard's entries into `Fragment`s of at most `max_samples` samples, the
pieces a shard joins into request bodies.

Invariant: the bytes are exactly what protobuf's `SerializeToString` writes for the same message
(proto3: zero values and empty fields omitted), checked against `metricgate.remotewrite.schema`.
StaleNaN travels as its exact bit pattern and never becomes a Python float, which could quiet it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

pack_double: Final = struct.Struct("<d").pack
ZERO_DOUBLE: Final = bytes(8)
STALE_NAN: Final = struct.pack("<Q", 0x7FF0000000000002)
"""Prometheus' staleness marker as the 8 bytes of a `Sample.value`."""

_SAMPLE_HEAD_LEN: Final = 16
"""A sample with a non-zero value and a 6-byte timestamp varint (any date 2004-2112)."""


_SAMPLE_HEAD: Final = b"\x12" + bytes((_SAMPLE_HEAD_LEN,)) + b"\x09"
"""The `samples` field of a 16-byte sample, up to its value."""

_SMALL: Final = tuple(bytes((i,)) for i in range(0x80))
_MAX_CACHED_PAIRS: Final = 200_000
_pairs: dict[tuple[str, str], bytes] = {}
"""Encoded `Label` entries: label pairs repeat across series (job, scope, method, status...)."""


def varint(value: int) -> bytes:
    """A protobuf varint; negative int64 values as their 10-byte two's complement."""
    if 0 <= value < 0x80:
        return _SMALL[value]
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def field_bytes(number: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return bytes((number << 3 | 2,)) + varint(len(payload)) + payload


def label_block(labels: list[tuple[str, str]]) -> bytes:
    """The `labels` field entries of a `TimeSeries`, for labels already sorted and non-empty."""
    get = _pairs.get
    parts = []
    for pair in labels:
        encoded = get(pair)
        if encoded is None:
            name, value = pair
            encoded = field_bytes(1, field_bytes(1, name.encode()) + field_bytes(2, value.encode()))
            if len(_pairs) >= _MAX_CACHED_PAIRS:
                _pairs.clear()
            _pairs[pair] = encoded
        parts.append(encoded)
    return b"".join(parts)


def timestamp_tail(ms: int) -> bytes:
    """The `Sample.timestamp` field for `ms` (empty for 0, which proto3 omits)."""
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
        sample = (b"\x09" + value if value != ZERO_DOUBLE else b"") + tail
        out += field_bytes(1, self.labels + field_bytes(2, sample))


@dataclass(slots=True)
class Fragment:
    """Encoded `timeseries` entries for one shard: a piece of a request body (a lane's `Piece`).

    `points` counts the data points whose entries it holds (a histogram point is several
    samples; `target_info` and expiry StaleNaNs belong to no point); `tenant` is whose series
    they are ("" without `tenant_header`)."""

    data: bytes
    samples: int
    points: int
    tenant: str = ""


class Builder:
    """One shard's output of an encode call, cut into fragments of bounded size.

    The encoder adds to `samples` for every entry and to `extra` for every entry that is not a
    point of its own, so a gauge's hot path counts one number only."""

    __slots__ = ("extra", "fragments", "max_bytes", "max_samples", "out", "samples", "tenant")

    def __init__(self, max_samples: int, max_bytes: int, tenant: str = "") -> None:
        self.out = bytearray()
        self.samples = 0
        self.extra = 0
        self.fragments: list[Fragment] = []
        self.max_samples = max_samples
        self.max_bytes = max_bytes
        self.tenant = tenant

    def room(self, need: int) -> None:
        """Cut the current fragment if `need` more samples would overfill it."""
        if self.samples and (
            self.samples + need > self.max_samples
            or (self.max_bytes and len(self.out) >= self.max_bytes)
        ):
            self.cut()

    def cut(self) -> None:
        self.fragments.append(
            Fragment(bytes(self.out), self.samples, self.samples - self.extra, self.tenant)
        )
        self.out = bytearray()
        self.samples = self.extra = 0

    def finish(self) -> list[Fragment]:
        if self.samples:
            self.cut()
        return self.fragments
