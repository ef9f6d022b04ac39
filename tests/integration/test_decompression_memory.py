"""Decompression bombs against a gateway process: refused with 413, and the process's real peak
memory (VmHWM) grows by no more than `max_decompressed_size`, however many arrive at once.

Before, a 254 KiB gzip of 256 MiB cost 128 MiB of peak RSS against a 64 MiB limit (the output
was built in blocks, then copied into one), and the Pushgateway's gzip path 103 MiB.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cramjam
import pytest
import requests

from tests.support.gateway import Gateway, default_ports, run_gateway
from tests.support.memory import peak_rss_growth
from tests.support.ports import free_port

pytestmark = pytest.mark.integration

MIB = 1 << 20
LIMIT = 64 * MIB
SLACK = 20 * MIB
"""Allowed above the limit: one inflate chunk, the wire body, allocator and interpreter noise."""
BOMB_SIZE = 256 * MIB
TEMPLATE = """
receivers:
  otlp:
    protocols:
      http: {{endpoint: "127.0.0.1:{http}", max_decompressed_size: 64MiB}}
  pushgateway: {{endpoint: "127.0.0.1:{pushgateway}", max_decompressed_size: 64MiB}}
  prometheus_remote_write: {{endpoint: "127.0.0.1:{remote_write}", max_decompressed_size: 128MiB}}
exporters:
  prometheus: {{endpoint: "127.0.0.1:{prometheus}"}}
service:
  pipelines:
    metrics: {{receivers: [otlp, pushgateway, prometheus_remote_write], exporters: [prometheus]}}
  telemetry:
    metrics: {{address: "127.0.0.1:{telemetry}"}}
    logs: {{level: warning, format: json}}
"""
PROTOBUF = {"Content-Type": "application/x-protobuf"}


def zlib_bomb(wbits: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
    zeros = bytes(MIB)
    return (
        b"".join(compressor.compress(zeros) for _ in range(BOMB_SIZE // MIB)) + compressor.flush()
    )


def zstd_bomb() -> bytes:
    """Written as a stream, so the frame does not declare its size."""
    compressor = cramjam.zstd.Compressor()
    zeros = bytes(16 * MIB)
    for _ in range(BOMB_SIZE // (16 * MIB)):
        compressor.compress(zeros)
    return bytes(compressor.finish())


BOMBS: dict[str, Callable[[], tuple[str, bytes, dict[str, str]]]] = {
    "otlp gzip": lambda: ("http", zlib_bomb(31), {**PROTOBUF, "Content-Encoding": "gzip"}),
    "otlp deflate": lambda: ("http", zlib_bomb(15), {**PROTOBUF, "Content-Encoding": "deflate"}),
    "otlp zstd": lambda: ("http", zstd_bomb(), {**PROTOBUF, "Content-Encoding": "zstd"}),
    "otlp snappy": lambda: (
        "http",
        bytes(cramjam.snappy.compress(bytes(128 * MIB))),
        {**PROTOBUF, "Content-Encoding": "snappy"},
    ),
    "pushgateway gzip": lambda: ("pushgateway", zlib_bomb(31), {"Content-Encoding": "gzip"}),
    "remote-write snappy": lambda: (
        "remote_write",
        bytes(cramjam.snappy.compress_raw(bytes(200 * MIB))),
        {**PROTOBUF, "Content-Encoding": "snappy"},
    ),
}
PATHS = {"http": "/v1/metrics", "pushgateway": "/metrics/job/bomb", "remote_write": "/api/v1/write"}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    ports = {**default_ports(), "pushgateway": free_port(), "remote_write": free_port()}
    tmp_path: Path = tmp_path_factory.mktemp("bombs")
    with run_gateway(tmp_path, TEMPLATE, ports) as running:
        # warm up every path once, so buffers and caches exist before measuring
        for port_name, body, headers in (
            ("http", zlib.compress(b"", 9, wbits=31), {**PROTOBUF, "Content-Encoding": "gzip"}),
            ("pushgateway", zlib.compress(b"up 1\n", 9, wbits=31), {"Content-Encoding": "gzip"}),
            ("remote_write", bytes(cramjam.snappy.compress_raw(b"")), PROTOBUF),
        ):
            url = running.url(port_name, PATHS[port_name])
            response = requests.post(url, body, headers=headers, timeout=30)
            assert response.status_code < 300, response.text
        yield running


@pytest.mark.parametrize("bomb", list(BOMBS))
def test_a_bomb_costs_at_most_the_limit(gateway: Gateway, bomb: str) -> None:
    port_name, body, headers = BOMBS[bomb]()
    assert len(body) < 16 * MIB
    with peak_rss_growth(gateway.process.pid) as growth:
        response = requests.post(
            gateway.url(port_name, PATHS[port_name]), body, headers=headers, timeout=60
        )
    assert response.status_code == 413, response.text
    assert growth[0] < LIMIT + SLACK, f"peak RSS grew by {growth[0] / MIB:.0f} MiB"
    assert gateway.post_gauge("after_bomb", [({}, 1.0, 1)]) == 200


def test_concurrent_bombs_do_not_add_up(gateway: Gateway) -> None:
    _, body, headers = BOMBS["otlp gzip"]()
    url = gateway.url("http", PATHS["http"])
    with (
        peak_rss_growth(gateway.process.pid) as growth,
        ThreadPoolExecutor(8) as pool,
    ):
        statuses = list(
            pool.map(lambda _: requests.post(url, body, headers=headers, timeout=60), range(8))
        )
    assert [response.status_code for response in statuses] == [413] * 8
    assert growth[0] < LIMIT + SLACK, f"peak RSS grew by {growth[0] / MIB:.0f} MiB"
