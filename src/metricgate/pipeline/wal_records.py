"""The write-ahead log's record format, and how a record is sealed when the queue is encrypted.

A record is a header followed by `length` bytes of body:

| format      | header (little-endian)                                                        |
| ----------- | ----------------------------------------------------------------------------- |
| 3 (written) | `"MGW3"`, u32 length, u32 crc32, u32 samples, u64 ms, u32 points, u16 tag len |
| 2 (read)    | `"MGW2"`, length, crc32, samples, ms, points                                  |
| 1 (read)    | `"MGW1"`, length, crc32, samples, ms (points = samples)                       |

The body is the tag followed by the payload (format 3; earlier formats have no tag). The tag is
opaque to the log: the ordered lanes keep there the tenant a piece is sent for, so a request read
back holds one tenant's data. The CRC covers the length, every header field after the CRC and the
body: it finds torn writes and flipped bits, never a deliberate change.

Encrypted queues (`sending_queue.storage.encryption`): a segment starts with the 16-byte header of
`metricgate.pipeline.encryption` (magic `MGE1`, the sealing key's id), and each record's body is
sealed with AES-256-GCM (`nonce || ciphertext || tag`, 28 bytes more). What is sealed is the tag
and the payload; what is authenticated besides is the segment header and `associated()`: the
shard, the segment's number (its base offset), the record's position in the segment and its
header fields. So a record cannot be altered, moved to another place or segment, or given other
counts without failing to open. The frame (header and CRC) stays readable, so torn tails and
resynchronisation work as for plain records, and a record that fails to open is still counted
with its points.

Invariant: `parse` accepts a record only if its CRC holds; `encode` writes format 3, which
`parse` reads back byte for byte.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Final

from metricgate.pipeline.encryption import HEADER_SIZE as SEGMENT_HEADER_SIZE
from metricgate.pipeline.encryption import MAGIC as SEGMENT_MAGIC
from metricgate.pipeline.encryption import OVERHEAD as SEAL_OVERHEAD

MAGIC: Final = b"MGW3"
HEADER: Final = struct.Struct("<4sIIIQIH")
"""magic, body length, crc32, samples, append time in ms, points, tag length."""
MAGIC_V2: Final = b"MGW2"
HEADER_V2: Final = struct.Struct("<4sIIIQI")
MAGIC_V1: Final = b"MGW1"
HEADER_V1: Final = struct.Struct("<4sIIIQ")
"""Format 1, and the prefix every format shares."""
MAX_RECORD_BYTES: Final = 256 * 1024 * 1024

_TAIL: Final = struct.Struct("<IQIH")
_TAIL_V2: Final = struct.Struct("<IQI")
_TAIL_V1: Final = struct.Struct("<IQ")
_AFTER_V1: Final = struct.Struct("<IH")
_POINTS: Final = struct.Struct("<I")
_LENGTH: Final = struct.Struct("<I")
_ASSOCIATED: Final = struct.Struct("<IQQIQIH")
_MAGICS: Final = (MAGIC, MAGIC_V2, MAGIC_V1)
_HEADERS: Final = {MAGIC: HEADER, MAGIC_V2: HEADER_V2, MAGIC_V1: HEADER_V1}

__all__ = [
    "HEADER",
    "HEADER_V1",
    "HEADER_V2",
    "MAGIC",
    "MAGIC_V1",
    "MAGIC_V2",
    "MAX_RECORD_BYTES",
    "SEAL_OVERHEAD",
    "SEGMENT_HEADER_SIZE",
    "SEGMENT_MAGIC",
    "Record",
    "associated",
    "encode",
    "find_magic",
    "header_at",
    "parse",
]


@dataclass(slots=True)
class Record:
    """A record read back: where it ends in the shard's stream, its payload, tag and counts.

    A record with an `error` (not `intact`) is one of an encrypted queue that failed to open
    (altered, moved, sealed with a key not configured, or not sealed at all): its payload is
    empty, it was counted as dropped, and it is handed out only so that the reader acknowledges
    past it in order."""

    end: int
    payload: bytes
    samples: int
    time_ms: int
    points: int
    tag: bytes = b""
    tag_length: int = 0
    error: str = ""

    @property
    def intact(self) -> bool:
        return not self.error


def encode(
    tag: bytes, body: bytes, samples: int, time_ms: int, points: int, tag_length: int
) -> bytes:
    """One format-3 record: its header, then `tag` and `body` (a plain record's tag and payload;
    a sealed record has its tag inside `body` and an empty `tag` here)."""
    tail = _TAIL.pack(samples, time_ms, points, tag_length)
    length = len(tag) + len(body)
    crc = zlib.crc32(body, zlib.crc32(tag, zlib.crc32(tail, zlib.crc32(_LENGTH.pack(length)))))
    return b"".join(
        (HEADER.pack(MAGIC, length, crc, samples, time_ms, points, tag_length), tag, body)
    )


def associated(
    shard: int, segment: int, position: int, samples: int, time_ms: int, points: int, tag: int
) -> bytes:
    """What a sealed record is authenticated with besides its segment header (module docstring):
    `segment` is the segment's base offset, `position` the record's offset within the segment."""
    return _ASSOCIATED.pack(shard, segment, position, samples, time_ms, points, tag)


def parse(data: bytes | memoryview, pos: int) -> tuple[Record | None, int]:
    """The valid record at `pos` of `data` and its size, (None, 0) if there is none (yet).

    The record's `payload` is its whole body (tag included, sealed if the queue is encrypted);
    the log splits or opens it."""
    if len(data) - pos < HEADER_V1.size:
        return None, 0
    # Every format's header is format 1's plus fields: read the common part, then the rest.
    magic, length, crc, samples, time_ms = HEADER_V1.unpack_from(data, pos)
    tag_length = 0
    if magic == MAGIC:
        if len(data) - pos < HEADER.size:
            return None, 0
        points, tag_length = _AFTER_V1.unpack_from(data, pos + HEADER_V1.size)
        tail = _TAIL.pack(samples, time_ms, points, tag_length)
        size = HEADER.size
    elif magic == MAGIC_V2:
        if len(data) - pos < HEADER_V2.size:
            return None, 0
        points = _POINTS.unpack_from(data, pos + HEADER_V1.size)[0]
        tail = _TAIL_V2.pack(samples, time_ms, points)
        size = HEADER_V2.size
    elif magic == MAGIC_V1:
        points = samples
        tail = _TAIL_V1.pack(samples, time_ms)
        size = HEADER_V1.size
    else:
        return None, 0
    if length > MAX_RECORD_BYTES or len(data) - pos - size < length or tag_length > length:
        return None, 0
    start = pos + size
    body = bytes(data[start : start + length])
    if zlib.crc32(body, zlib.crc32(tail, zlib.crc32(_LENGTH.pack(length)))) != crc:
        return None, 0
    return Record(0, body, samples, time_ms, points, tag_length=tag_length), size + length


def find_magic(data: bytes, pos: int) -> int:
    """Where the next record header (of any format) may start at or after `pos`; -1: none."""
    found = [i for magic in _MAGICS if (i := data.find(magic, pos)) >= 0]
    return min(found) if found else -1


def header_at(data: bytes, pos: int) -> tuple[int, int, int] | None:
    """(header size, body length, append time) of a plausible header at `pos`, else None."""
    header = _HEADERS.get(data[pos : pos + 4])
    if header is None or len(data) - pos < header.size:
        return None
    fields = header.unpack_from(data, pos)
    return header.size, int(fields[1]), int(fields[4])
