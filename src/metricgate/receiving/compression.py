"""Bounded decompression of request bodies, shared by every HTTP receiver.

`Content-Encoding` values understood (case-insensitive): none or `identity`; `gzip` (`x-gzip`,
concatenated members too); `deflate` and `zlib` (zlib-wrapped or raw deflate, told apart by the
zlib header, since clients disagree on what `deflate` means); `zstd`; `snappy` (the block format
the Collector and Prometheus send, or the framed format, told apart by the stream identifier).
lz4 is not supported. A list of several codings is refused. Each receiver passes the codings it
serves (remote-write: snappy only; Pushgateway: gzip only).

Invariant: however small and crafted the input (a gzip bomb), decompression never holds more
than `limit` output bytes plus one `CHUNK`, and every output byte is charged to the request's
`Lease` of the process-wide in-flight budget as it is produced:
- gzip/deflate inflate `CHUNK` bytes at a time into one growing `bytearray` (grown in place, so
  the peak is the output itself, not the output plus a copy), refused as soon as it passes `limit`;
- block snappy and zstd frames that declare their size are checked against `limit` before anything
  is allocated, then decompressed into a buffer of exactly that size;
- zstd frames without a declared size and framed snappy decompress into an anonymous mapping of
  `limit` bytes (only the pages written cost memory), then the output is copied out once.
The result is a `bytes` or `bytearray`; protobuf (upb), `json.loads` and `str()` read both without
a copy.
"""

from __future__ import annotations

import mmap
import zlib
from collections.abc import Callable
from typing import Final

import cramjam

from metricgate.errors import MalformedError, TooLargeError, UnsupportedError
from metricgate.pipeline.inflight import Lease

SUPPORTED: Final = ("gzip", "deflate", "zlib", "zstd", "snappy")
"""Content codings understood besides `identity`."""
CHUNK: Final = 1 << 20
"""Inflate this much at a time: big enough to cost nothing per call, small beside any limit."""

SNAPPY_MAX_RATIO: Final = 22
"""A snappy block expands at most 64 bytes per 3-byte copy element, so about 21.3 times."""

_ALIASES: Final = {"": "", "identity": "", "x-gzip": "gzip", **{name: name for name in SUPPORTED}}
SNAPPY_STREAM: Final = b"\xff\x06\x00\x00sNaPpY"
"""The stream identifier that starts every framed-format snappy body."""
_ZSTD_MAGIC: Final = b"\x28\xb5\x2f\xfd"

Body = bytes | bytearray


def accept_encoding(supported: tuple[str, ...] = SUPPORTED) -> str:
    """The `Accept-Encoding` value a 415 answers with (RFC 7694)."""
    return ", ".join(("identity", *supported))


def coding(header: str, supported: tuple[str, ...] = SUPPORTED) -> str:
    """The canonical coding name for a `Content-Encoding` header ("" for none)."""
    found = _ALIASES.get(header.strip().lower())
    if found is None or (found and found not in supported):
        raise UnsupportedError(
            f"unsupported Content-Encoding {header!r}; supported: {accept_encoding(supported)}"
        )
    return found


def decompress(body: bytes, encoding: str, limit: int, lease: Lease) -> Body:
    """`body` decoded from `encoding` (a `coding()` result), at most `limit` bytes of it."""
    if not encoding:
        return body
    if not body:
        return b""
    if encoding == "gzip":
        return _inflate(body, 16 + zlib.MAX_WBITS, limit, lease)
    if encoding in ("deflate", "zlib"):
        zlib_header = len(body) > 1 and body[0] & 0x0F == 8 and (body[0] << 8 | body[1]) % 31 == 0
        return _inflate(body, zlib.MAX_WBITS if zlib_header else -zlib.MAX_WBITS, limit, lease)
    if encoding == "zstd":
        declared = _zstd_content_size(body)
        if declared is None:
            return _into_mapping(cramjam.zstd.decompress_into, body, limit, lease, "zstd")
        _check_declared(declared, limit, "zstd frame")
        try:
            return _into_exact(cramjam.zstd.decompress_into, body, declared, lease, "zstd")
        except _Overflow:
            # Several frames: the first one's declared size is not the body's.
            return _into_mapping(cramjam.zstd.decompress_into, body, limit, lease, "zstd")
    if encoding == "snappy":
        if body.startswith(SNAPPY_STREAM):
            return _into_mapping(cramjam.snappy.decompress_into, body, limit, lease, "snappy")
        try:
            declared = cramjam.snappy.decompress_raw_len(body)
        except cramjam.DecompressionError as exc:
            raise MalformedError(f"invalid snappy body: {exc}") from None
        _check_declared(declared, limit, "snappy block")
        if declared > SNAPPY_MAX_RATIO * len(body):
            # Refused before a buffer of the declared size is allocated for a tiny body.
            raise MalformedError(
                f"invalid snappy body: {len(body)} bytes cannot hold the {declared} declared"
            )
        return _into_exact(cramjam.snappy.decompress_raw_into, body, declared, lease, "snappy")
    raise UnsupportedError(f"unsupported Content-Encoding {encoding!r}")


def _inflate(body: bytes, wbits: int, limit: int, lease: Lease) -> bytearray:
    out = bytearray()
    data = body
    while True:
        inflater = zlib.decompressobj(wbits)
        while not inflater.eof:
            try:
                # At most one byte past the limit: enough to tell "too large" from "fits".
                part = inflater.decompress(data, min(CHUNK, limit - len(out) + 1))
            except zlib.error as exc:
                raise MalformedError(f"invalid compressed body: {exc}") from None
            data = inflater.unconsumed_tail
            if part:
                if len(out) + len(part) > limit:
                    raise TooLargeError(f"decompressed body exceeds {limit} bytes")
                lease.charge(len(part))
                out += part
            elif not data and not inflater.eof:
                raise MalformedError("invalid compressed body: truncated stream")
        data = inflater.unused_data
        if not data:
            return out
        if wbits != 16 + zlib.MAX_WBITS:
            raise MalformedError("invalid compressed body: data after the end of the stream")


def _check_declared(declared: int, limit: int, what: str) -> None:
    if declared > limit:
        raise TooLargeError(f"{what} declares {declared} bytes, over the {limit} limit")


Into = Callable[[bytes, bytearray | mmap.mmap], int]


class _Overflow(MalformedError):
    """The output buffer filled up before the input ended."""


def _into_exact(into: Into, body: bytes, size: int, lease: Lease, name: str) -> bytearray:
    """Decompress a body whose size is declared into a buffer of exactly that size."""
    lease.charge(size)
    out = bytearray(size)
    try:
        written = into(body, out)
    except cramjam.DecompressionError as exc:
        lease.refund(size)
        if _full(exc):
            raise _Overflow(f"invalid {name} body: more than the {size} bytes declared") from None
        raise MalformedError(f"invalid {name} body: {exc}") from None
    if written != size:
        raise MalformedError(f"invalid {name} body: declares {size} bytes, holds {written}")
    return out


def _full(exc: Exception) -> bool:
    """Whether cramjam failed because the output buffer was full (Rust's WriteZero)."""
    text = str(exc)
    return "write whole buffer" in text or "smaller than required" in text


def _into_mapping(into: Into, body: bytes, limit: int, lease: Lease, name: str) -> bytes:
    """Decompress into an anonymous mapping of `limit` bytes; only written pages cost memory."""
    out = mmap.mmap(-1, max(limit, 1))
    try:
        try:
            size = into(body, out)
        except cramjam.DecompressionError as exc:
            if _full(exc):
                raise TooLargeError(f"decompressed body exceeds {limit} bytes") from None
            raise MalformedError(f"invalid {name} body: {exc}") from None
        if size > limit:
            raise TooLargeError(f"decompressed body exceeds {limit} bytes")
        lease.charge(size)
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
