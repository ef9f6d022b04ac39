"""Persistent queue and WAL test support: storage settings, and rewriting a record on disk."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from metricgate.pipeline.persistent_queue import (
    StorageSettings,
)
from metricgate.pipeline.wal_records import HEADER, SEGMENT_HEADER_SIZE


def storage(path: Path, **settings: object) -> StorageSettings:
    return StorageSettings.model_validate({"directory": str(path), **settings})


def rewrite_record(file: Path, index: int, change: object) -> None:
    """Apply `change(header fields, body) -> (fields, body)` to record `index` of a sealed
    segment and fix its CRC, as someone who knows the format would: only authentication can
    tell."""
    data = bytearray(file.read_bytes())
    pos = SEGMENT_HEADER_SIZE
    for _ in range(index):
        pos += HEADER.size + HEADER.unpack_from(data, pos)[1]
    fields = list(HEADER.unpack_from(data, pos))
    body = bytes(data[pos + HEADER.size : pos + HEADER.size + fields[1]])
    fields, body = change(fields, body)  # type: ignore[operator]
    tail = struct.pack("<IQIH", fields[3], fields[4], fields[5], fields[6])
    fields[1] = len(body)
    fields[2] = zlib.crc32(body, zlib.crc32(tail, zlib.crc32(struct.pack("<I", len(body)))))
    end = pos + HEADER.size + HEADER.unpack_from(data, pos)[1]
    data[pos:end] = HEADER.pack(*fields) + body
    file.write_bytes(bytes(data))


def flip_body_byte(fields: list[int], body: bytes) -> tuple[list[int], bytes]:
    altered = bytearray(body)
    altered[20] ^= 0x01
    return fields, bytes(altered)
