"""Bounded decompression of OTLP/HTTP request bodies.

`Content-Encoding` values accepted (case-insensitive): none or `identity`; `gzip` (`x-gzip`,
concatenated members too); `deflate` and `zlib` (zlib-wrapped or raw deflate, told apart by the
zlib header, since clients disagree on what `deflate` means); `zstd`; `snappy` (the block format
the Collector and Prometheus send, or the framed format, told apart by the stream identifier).
lz4 is not supported. A list of several codings is refused.

Invariant: decompression never holds more than `limit` output bytes, however small and however
crafted the input (a gzip bomb). zlib formats inflate with `max_length`; zstd and framed snappy
decompress into an anonymous mapping of exactly `limit` bytes, which costs memory only for the
pages actually written; block snappy's declared length is checked before anything is allocated.
"""

from __future__ import annotations

import mmap
import zlib
from typing import Final

import cramjam

SUPPORTED: Final = ("gzip", "deflate", "zlib", "zstd", "snappy")
"""Content codings accepted besides `identity` (the `Accept-Encoding` answer on a 415)."""

_ALIASES: Final = {"": "", "identity": "", "x-gzip": "gzip", **{name: name for name in SUPPORTED}}
_SNAPPY_STREAM: Final = b"\xff\x06\x00\x00sNaPpY"
_ZSTD_MAGIC: Final = b"\x28\xb5\x2f\xfd"


class UnsupportedEncodingError(Exception):
    """The `Content-Encoding` is not one this receiver decodes (HTTP 415)."""


class TooLargeError(Exception):
    """The decompressed body would exceed the configured limit (HTTP 413)."""


class CorruptBodyError(Exception):
    """The body does not decompress with its declared encoding (HTTP 400)."""


def coding(header: str) -> str:
    """The canonical coding name for a `Content-Encoding` header ("" for none)."""
    found = _ALIASES.get(header.strip().lower())
    if found is None:
        raise UnsupportedEncodingError(f"unsupported Content-Encoding {header!r}")
    return found


def decompress(body: bytes, encoding: str, limit: int) -> bytes:
    """`body` decoded from `encoding` (a `coding()` result), at most `limit` bytes of it."""
    if not encoding:
        return body
    if not body:
        return b""
    if encoding == "gzip":
        return _inflate(body, 16 + zlib.MAX_WBITS, limit)
    if encoding in ("deflate", "zlib"):
        zlib_header = len(body) > 1 and body[0] & 0x0F == 8 and (body[0] << 8 | body[1]) % 31 == 0
        return _inflate(body, zlib.MAX_WBITS if zlib_header else -zlib.MAX_WBITS, limit)
    if encoding == "zstd":
        declared = _zstd_content_size(body)
        if declared is not None and declared > limit:
            raise TooLargeError(f"zstd frame declares {declared} bytes, over the {limit} limit")
        return _into_mapping(cramjam.zstd.decompress_into, body, limit, "zstd")
    if encoding == "snappy":
        if body.startswith(_SNAPPY_STREAM):
            return _into_mapping(cramjam.snappy.decompress_into, body, limit, "snappy")
        try:
            declared = cramjam.snappy.decompress_raw_len(body)
            if declared > limit:
                raise TooLargeError(f"snappy block declares {declared} bytes, over {limit}")
            return bytes(cramjam.snappy.decompress_raw(body))
        except cramjam.DecompressionError as exc:
            raise CorruptBodyError(f"invalid snappy body: {exc}") from None
    raise UnsupportedEncodingError(f"unsupported Content-Encoding {encoding!r}")


def _inflate(body: bytes, wbits: int, limit: int) -> bytes:
    parts: list[bytes] = []
    total = 0
    data = body
    while data:
        inflater = zlib.decompressobj(wbits)
        try:
            part = inflater.decompress(data, limit - total + 1)
        except zlib.error as exc:
            raise CorruptBodyError(f"invalid compressed body: {exc}") from None
        total += len(part)
        if total > limit:
            raise TooLargeError(f"decompressed body exceeds {limit} bytes")
        parts.append(part)
        if not inflater.eof:
            raise CorruptBodyError("invalid compressed body: truncated stream")
        data = inflater.unused_data
        if data and wbits != 16 + zlib.MAX_WBITS:
            raise CorruptBodyError("invalid compressed body: data after the end of the stream")
    return b"".join(parts)


def _into_mapping(decompress_into: object, body: bytes, limit: int, name: str) -> bytes:
    """Decompress into an anonymous mapping of `limit` bytes; only written pages cost memory."""
    out = mmap.mmap(-1, max(limit, 1))
    try:
        try:
            size = decompress_into(body, out)  # type: ignore[operator]
        except cramjam.DecompressionError as exc:
            # cramjam reports a full output buffer as a failed write (Rust's WriteZero).
            if "write whole buffer" in str(exc) or "smaller than required" in str(exc):
                raise TooLargeError(f"decompressed body exceeds {limit} bytes") from None
            raise CorruptBodyError(f"invalid {name} body: {exc}") from None
        if size > limit:
            raise TooLargeError(f"decompressed body exceeds {limit} bytes")
        return out[:size]
    finally:
        out.close()


def _zstd_content_size(body: bytes) -> int | None:
    """The decompressed size a zstd frame header declares, if it declares one."""
    if len(body) < 6 or not body.startswith(_ZSTD_MAGIC):
        return None
    descriptor = body[4]
    size_flag = descriptor >> 6
    single_segment = descriptor >> 5 & 1
    dictionary_bytes = (0, 1, 2, 4)[descriptor & 3]
    size_bytes = (1 if single_segment else 0, 2, 4, 8)[size_flag]
    if size_bytes == 0:
        return None
    start = 5 + (0 if single_segment else 1) + dictionary_bytes
    field = body[start : start + size_bytes]
    if len(field) < size_bytes:
        return None
    declared = int.from_bytes(field, "little")
    return declared + 256 if size_bytes == 2 else declared
