"""Protobuf wire primitives: varints, length-delimited fields, skipping a field.

Every hand-written codec in metricgate (the OTLP and remote-write encoders, the remote-write
layout readers and 1.0 -> 2.0 conversion, the exposition protobuf reader) writes and reads
varints with these functions. A hot loop may bind them to locals, keep a table of encodings
built with `varint` (as `remotewrite.v2` does), or test a one- or two-byte length inline before
calling `read_varint`; it never carries a general varint loop of its own. (`remotewrite.layout`
checks one fixed shape, a 6-byte timestamp, byte by byte: a shape test, not a reader.)

Invariant: encodings are exactly protobuf's (a negative int64 is its 10-byte two's complement),
and readers raise `WireError` (a `ValueError`) on bytes cut short, never `IndexError`.
"""

from __future__ import annotations

from typing import Final

ONE_BYTE: Final = tuple(bytes((i,)) for i in range(0x80))
"""The varints below 128: one byte each."""


class WireError(ValueError):
    """Bytes that are not the protobuf the reader expects (cut short, a varint too long...)."""


def varint(value: int) -> bytes:
    """A protobuf varint; negative int64 values as their 10-byte two's complement."""
    if value < 0x80:
        if value >= 0:
            return ONE_BYTE[value]
        value += 1 << 64
    elif value < 0x4000:
        return bytes(((value & 0x7F) | 0x80, value >> 7))
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """The varint at `pos` and the position after it; `WireError` if it is cut short or runs
    past 10 bytes."""
    value = shift = 0
    size = len(data)
    while pos < size:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise WireError("varint too long")
    raise WireError("truncated varint")


_TAGS: Final = tuple(varint(number << 3 | 2) for number in range(32))


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (`number` below 32)."""
    return _TAGS[number] + varint(len(payload)) + payload


def skip(data: bytes, pos: int, tag: int, end: int) -> int:
    """The position after the value of a field with `tag` whose value starts at `pos`; the
    value must end by `end`."""
    wire_type = tag & 7
    if wire_type == 0:
        _, pos = read_varint(data, pos)
    elif wire_type == 1:
        pos += 8
    elif wire_type == 2:
        length, pos = read_varint(data, pos)
        pos += length
    elif wire_type == 5:
        pos += 4
    else:
        raise WireError(f"unsupported wire type {wire_type}")
    if pos > end:
        raise WireError("field runs past its message")
    return pos
