"""The byte layout of a remote-write 1.0 `TimeSeries` entry, read without a protobuf parse.

Prometheus, vmagent and Grafana Agent write each series of a request as its labels (field 1,
`Label` entries) followed by one sample (field 2: `Sample{value=1 double, timestamp=2 int64}`).
With a timestamp of 1971-2109 (a 6-byte varint of milliseconds) such an entry ends in one of two
fixed shapes:

    ... labels ... 12 10 09 <8 value bytes> 10 <6 timestamp bytes>     (value != 0)
    ... labels ... 12 07 10 <6 timestamp bytes>                        (value == 0, omitted)

so the labels are everything before the last 18 (or 9) bytes: a slice, used as the series' cache
key without decoding it. `RemoteWriteDecoder` only puts a key into its cache after a full parse of
an entry showed that the key is exactly that entry's complete run of label fields
(`label_fields`); an entry that is "known key + one of the shapes above" therefore parses as
exactly those labels plus one sample, and nothing else. Every other entry (several samples,
exemplars, native histograms, another field order, an odd timestamp) takes the full parse.
"""

from __future__ import annotations

import struct
from typing import Final

from metricgate.wire.protowire import WireError, read_varint

VALUE_TAIL: Final = 18
"""Bytes after the labels in an entry with a non-zero value: `12 10 09 <8> 10 <6>`."""
VALUE_HEAD: Final = b"\x12\x10\x09"
ZERO_TAIL: Final = 9
"""Bytes after the labels in an entry whose value is 0: `12 07 10 <6>`."""
ZERO_HEAD: Final = b"\x12\x07"
STAMP_LEN: Final = 7
"""`10` + a 6-byte varint: the timestamp field at the end of both shapes."""
VALUE_AT: Final = VALUE_TAIL - 3
"""The value's offset from the end of an entry of the non-zero shape."""

unpack_double_from: Final = struct.Struct("<d").unpack_from


def stamp_ns(tail: bytes) -> int | None:
    """The timestamp in ns of a 7-byte field `10 <6-byte varint>`; None if `tail` is not one."""
    if len(tail) != STAMP_LEN or tail[0] != 0x10 or tail[6] >= 0x80:
        return None
    ms = 0
    for shift, byte in enumerate(tail[1:6]):
        if byte < 0x80:
            return None  # a shorter varint: not this shape
        ms |= (byte & 0x7F) << (7 * shift)
    return (ms | tail[6] << 35) * 1_000_000


def label_fields(entry: bytes) -> tuple[int, list[bytes]]:
    """The run of label fields (tag `0a`) that opens `entry`: where it ends, and each field's
    payload (an encoded `Label`).

    Stops at the first other field, or at a label whose length runs past the end (the full parse
    reports that one).
    """
    pos, end = 0, len(entry)
    payloads = []
    while pos + 1 < end and entry[pos] == 0x0A:
        length = entry[pos + 1]
        start = pos + 2
        if length >= 0x80:
            try:
                length, start = read_varint(entry, pos + 1)
            except WireError:
                break
        if start + length > end:
            break
        payloads.append(entry[start : start + length])
        pos = start + length
    return pos, payloads
