"""Series JSON texts -> compressed request bodies that each fit the intake's limits.

The v2 intake refuses a body over 512,000 bytes as sent or 5,242,880 bytes decompressed (413).
Series are packed greedily under the decompressed limit, then each body is compressed; a body
still over the compressed limit is split in two and both halves tried again. Random tag values
compress badly, repetitive ones well, so neither limit can be predicted from the other.

Each body also records its `span`, the range of input series it was cut from (contiguous, so the
spans cover the input): `metricgate.pipeline.retry.points_per_request` turns them and the mapper's
`followers` into how many data points each body carries.

Invariant: every body returned is within both limits; a single series that cannot fit alone is
returned in `oversized`, never sent.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Final

import cramjam

MAX_COMPRESSED: Final = 512_000
MAX_DECOMPRESSED: Final = 5_242_880
_WRAPPER: Final = len('{"series":[]}')
CONTENT_ENCODING: Final = {"gzip": "gzip", "deflate": "deflate", "zstd1": "zstd1", "none": ""}


def compress(body: bytes, compression: str) -> bytes:
    """`body` encoded as the `Content-Encoding` for `compression` says."""
    if compression == "gzip":
        packer = zlib.compressobj(6, zlib.DEFLATED, 31)
        return packer.compress(body) + packer.flush()
    if compression == "deflate":
        return zlib.compress(body, 6)
    if compression == "zstd1":
        return bytes(cramjam.zstd.compress(body, level=1))
    return body


@dataclass
class Payloads:
    """The bodies for one batch, and what could not be sent at all."""

    bodies: list[bytes] = field(default_factory=list)
    series: list[int] = field(default_factory=list)
    """Series count of each body."""
    spans: list[tuple[int, int]] = field(default_factory=list)
    """Input series range [start, end) of each body (oversized series fall inside one)."""
    oversized: int = 0


def build(
    series: list[str],
    compression: str,
    max_compressed: int = MAX_COMPRESSED,
    max_decompressed: int = MAX_DECOMPRESSED,
) -> Payloads:
    """Pack `series` (JSON object texts) into compressed bodies within the limits."""
    out = Payloads()
    chunk: list[str] = []
    size = _WRAPPER
    start = 0
    for i, item in enumerate(series):
        grown = len(item) + 1  # the texts are ASCII: json.dumps escapes the rest
        if grown + _WRAPPER > max_decompressed:
            out.oversized += 1
            continue
        if chunk and size + grown > max_decompressed:
            _add(out, chunk, (start, i), compression, max_compressed)
            chunk, size, start = [], _WRAPPER, i
        chunk.append(item)
        size += grown
    if chunk:
        _add(out, chunk, (start, len(series)), compression, max_compressed)
    return out


def _add(
    out: Payloads,
    chunk: list[str],
    span: tuple[int, int],
    compression: str,
    max_compressed: int,
) -> None:
    body = compress(('{"series":[' + ",".join(chunk) + "]}").encode(), compression)
    if len(body) <= max_compressed:
        out.bodies.append(body)
        out.series.append(len(chunk))
        out.spans.append(span)
    elif len(chunk) == 1:
        out.oversized += 1
    else:
        # Cut the span where the chunk is cut (off by the oversized series skipped in the first
        # half, if any: they are never sent, so only which half counts a point can move).
        half = len(chunk) // 2
        middle = span[0] + half
        _add(out, chunk[:half], (span[0], middle), compression, max_compressed)
        _add(out, chunk[half:], (middle, span[1]), compression, max_compressed)
