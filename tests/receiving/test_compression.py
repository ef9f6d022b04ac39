"""Bounded decompression: every coding, bombs stopped at the limit, corrupt input refused."""

from __future__ import annotations

import gzip
import zlib

import cramjam
import pytest

from metricgate.errors import InFlightLimitError, MalformedError, TooLargeError, UnsupportedError
from metricgate.pipeline.inflight import InFlightBytes
from metricgate.receiving.compression import coding
from metricgate.receiving.compression import decompress as decompress_into_budget

DATA = b"metricgate " * 5000


def decompress(body: bytes, encoding: str, limit: int) -> bytes | bytearray:
    """Decompress with a budget of its own; check every byte held was charged to it."""
    budget = InFlightBytes(limit)
    lease = budget.lease()
    out = decompress_into_budget(body, encoding, limit, lease)
    assert budget.used == (len(out) if out is not body else 0)
    lease.release()
    assert budget.used == 0
    return out


def encode(encoding: str, data: bytes) -> bytes:
    return {
        "gzip": lambda: gzip.compress(data),
        "zlib": lambda: zlib.compress(data),
        "deflate-raw": lambda: zlib.compress(data, wbits=-15),
        "zstd": lambda: bytes(cramjam.zstd.compress(data)),
        "snappy": lambda: bytes(cramjam.snappy.compress_raw(data)),
        "snappy-framed": lambda: bytes(cramjam.snappy.compress(data)),
    }[encoding]()


@pytest.mark.parametrize(
    ("header", "variant"),
    [
        ("gzip", "gzip"),
        ("x-gzip", "gzip"),
        ("deflate", "zlib"),
        ("deflate", "deflate-raw"),
        ("zlib", "zlib"),
        ("zstd", "zstd"),
        ("snappy", "snappy"),
        ("snappy", "snappy-framed"),
    ],
)
def test_round_trip(header: str, variant: str) -> None:
    assert decompress(encode(variant, DATA), coding(header), len(DATA)) == DATA
    with pytest.raises(TooLargeError):
        decompress(encode(variant, DATA), coding(header), len(DATA) - 1)


@pytest.mark.parametrize("wbits", [31, 15, -15])
def test_compressed_empty_bodies(wbits: int) -> None:
    encoding = "gzip" if wbits == 31 else "deflate"
    assert decompress(zlib.compress(b"", 9, wbits=wbits), encoding, 10) == b""


def test_identity_and_concatenated_gzip_members() -> None:
    assert decompress(DATA, coding(""), 1) == DATA  # the wire limit applies, not this one
    assert decompress(DATA, coding(" Identity "), 1) == DATA
    two = gzip.compress(b"a" * 10) + gzip.compress(b"b" * 10)
    assert decompress(two, "gzip", 100) == b"a" * 10 + b"b" * 10


@pytest.mark.parametrize("header", ["br", "lz4", "gzip, zstd", "compress"])
def test_unsupported_codings(header: str) -> None:
    with pytest.raises(UnsupportedError):
        coding(header)


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        ("gzip", b"not gzip at all"),
        ("gzip", gzip.compress(DATA)[:-20]),
        ("gzip", gzip.compress(DATA) + b"trailing junk"),
        ("deflate", zlib.compress(DATA) + b"junk"),
        ("zstd", b"\x28\xb5\x2f\xfd garbage"),
        ("zstd", bytes(cramjam.zstd.compress(DATA))[:-5]),
        ("snappy", b"\xff\xff\xff\xff\xff"),
        ("snappy", b"\xff\x06\x00\x00sNaPpY\x00\xff\xff\xff"),
    ],
)
def test_corrupt_bodies(encoding: str, body: bytes) -> None:
    with pytest.raises(MalformedError):
        decompress(body, encoding, 10 * len(DATA))


def test_bombs_stop_at_the_limit() -> None:
    limit = 1 << 20
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(1 << 20)
    gzip_bomb = b"".join(compressor.compress(zeros) for _ in range(64)) + compressor.flush()
    streamed = cramjam.zstd.Compressor()
    for _ in range(64):
        streamed.compress(zeros)
    zstd_bomb = bytes(streamed.finish())
    snappy_bomb = bytes(cramjam.snappy.compress_raw(bytes(64 << 20)))
    framed_bomb = bytes(cramjam.snappy.compress(bytes(64 << 20)))
    for encoding, bomb in (
        ("gzip", gzip_bomb),
        ("zstd", zstd_bomb),
        ("zstd", bytes(cramjam.zstd.compress(bytes(64 << 20)))),  # declares its size
        ("snappy", snappy_bomb),
        ("snappy", framed_bomb),
    ):
        assert len(bomb) < 4 << 20
        with pytest.raises(TooLargeError):
            decompress(bomb, encoding, limit)


def test_several_zstd_frames_in_one_body() -> None:
    two = bytes(cramjam.zstd.compress(DATA)) + bytes(cramjam.zstd.compress(b"tail"))
    assert decompress(two, "zstd", 10 * len(DATA)) == DATA + b"tail"


def test_a_snappy_block_declaring_more_than_it_can_hold_is_refused_before_allocating() -> None:
    declared = 50 << 20
    varint = bytearray()
    while declared >= 0x80:
        varint.append(declared & 0x7F | 0x80)
        declared >>= 7
    varint.append(declared)
    with pytest.raises(MalformedError, match="cannot hold"):
        decompress(bytes(varint) + b"\x00\x00", "snappy", 64 << 20)


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "zstd", "snappy"])
def test_output_is_charged_to_the_inflight_budget(encoding: str) -> None:
    body = {
        "gzip": gzip.compress(DATA),
        "deflate": zlib.compress(DATA),
        "zstd": bytes(cramjam.zstd.compress(DATA)),
        "snappy": bytes(cramjam.snappy.compress_raw(DATA)),
    }[encoding]
    budget = InFlightBytes(len(DATA) - 1)
    # alone, a request may go over the budget ...
    alone = budget.lease()
    assert decompress_into_budget(body, encoding, len(DATA), alone) == DATA
    assert budget.used == len(DATA)
    alone.release()
    # ... but not while another request holds bytes
    other = budget.lease()
    other.charge(1)
    with pytest.raises(InFlightLimitError) as caught:
        decompress_into_budget(body, encoding, len(DATA), budget.lease())
    assert caught.value.http_status == 503 and caught.value.retry_after == 1.0
    other.release()
