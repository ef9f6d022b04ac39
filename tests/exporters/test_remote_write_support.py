"""Shared helpers (no tests) for the remote-write exporter tests: decoding what it sends."""

from __future__ import annotations

import struct
from typing import Any

import cramjam

from metricgate.exporters.prometheus_remote_write import Fragment
from metricgate.wire.remotewrite import schema

STALE_BITS = 0x7FF0000000000002
Sample = tuple[tuple[tuple[str, str], ...], float | str, int]
"""(sorted labels, value or "stale", timestamp ms)."""


def decode_body(body: bytes) -> Any:
    return schema.WriteRequest.FromString(body)


def decode_compressed(payload: bytes) -> Any:
    return decode_body(bytes(cramjam.snappy.decompress_raw(payload)))


def samples_of(request: Any) -> list[Sample]:
    out: list[Sample] = []
    for ts in request.timeseries:
        labels = tuple((label.name, label.value) for label in ts.labels)
        for sample in ts.samples:
            bits = struct.unpack("<Q", struct.pack("<d", sample.value))[0]
            value: float | str = "stale" if bits == STALE_BITS else sample.value
            out.append((labels, value, sample.timestamp))
    return out


def fragments_body(per_shard: list[list[Fragment]]) -> bytes:
    return b"".join(f.data for fragments in per_shard for f in fragments)
