"""Reading OTLP number data points at fixed offsets, without a protobuf parse.

Encoders (upb, C++, Go, Java, JavaScript, .NET) write fields in field-number order, so a
`NumberDataPoint` almost always reads: `start_time_unix_nano` (tag 0x11 + 8 bytes, absent when 0),
`time_unix_nano` (0x19 + 8), `as_double` (0x21 + 8) or, after any exemplars (0x2A, length
delimited), `as_int` (0x31 + 8); then the attributes (0x3A) and flags (0x40). The decoder's hot
loop unpacks the common no-exemplar forms with the `struct` readers below; `layout()` handles them
all, exemplars included. Whatever follows the value and the exemplars is the point's *tail*.

Invariant: these readers return exactly what a full parse of the same bytes gives for the fields
they read, or None; they never guess. Whether a tail holds nothing else than attributes is for
`only_attributes()` to say, with a real parse.
"""

from __future__ import annotations

import struct
from typing import Final

from google.protobuf.message import DecodeError as ProtobufDecodeError

from metricgate.wire.otlp.schema import NumberDataPointTail
from metricgate.wire.protowire import WireError, read_varint

START_TIME_DOUBLE: Final = struct.Struct("<xQxQxd").unpack_from
"""(start, time, as_double) of a point starting 0x11 . 0x19 . 0x21 ."""
START_TIME_INT: Final = struct.Struct("<xQxQxq").unpack_from
"""(start, time, as_int) of a point starting 0x11 . 0x19 . 0x31 ."""
TIME_DOUBLE: Final = struct.Struct("<xQxd").unpack_from
"""(time, as_double) of a point starting 0x19 . 0x21 ."""
TIME_INT: Final = struct.Struct("<xQxq").unpack_from
"""(time, as_int) of a point starting 0x19 . 0x31 ."""
_FIXED64: Final = struct.Struct("<Q").unpack_from
_SFIXED64: Final = struct.Struct("<q").unpack_from
_DOUBLE: Final = struct.Struct("<d").unpack_from


def layout(raw: bytes) -> tuple[int, int, float, list[bytes], bytes] | None:
    """(start, time, value, encoded exemplars, tail) of a point in field-number order, or None."""
    size = len(raw)
    start = 0
    at = 0
    if size > 8 and raw[0] == 0x11:
        start = _FIXED64(raw, 1)[0]
        at = 9
    if size <= at + 8 or raw[at] != 0x19:
        return None
    time = _FIXED64(raw, at + 1)[0]
    at += 9
    value: float | None = None
    if size > at + 8 and raw[at] == 0x21:
        value = _DOUBLE(raw, at + 1)[0]
        at += 9
    exemplars = []
    while at < size and raw[at] == 0x2A:
        try:
            length, at = read_varint(raw, at + 1)
        except WireError:
            return None
        if at + length > size:
            return None
        exemplars.append(raw[at : at + length])
        at += length
    if value is None:
        if size <= at + 8 or raw[at] != 0x31:
            return None
        value = float(_SFIXED64(raw, at + 1)[0])
        at += 9
    return start, time, value, exemplars, raw[at:]


def only_attributes(tail: bytes) -> bool:
    """True when `tail` holds no time, value, exemplar or flags field (so: attributes only)."""
    try:
        other = NumberDataPointTail.FromString(tail)
    except ProtobufDecodeError:
        return False
    return not (
        other.start_time_unix_nano
        or other.time_unix_nano
        or other.as_double
        or other.exemplars
        or other.as_int
        or other.flags
    )
