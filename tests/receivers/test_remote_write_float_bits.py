"""Float values over remote-write keep their bits: receiver -> pipeline -> remote-write out and the
scrape page (`-0` stays `-0`, NaN payloads stay, StaleNaN ends the series and is sent back
exactly)."""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import aiohttp
import cramjam
from aiohttp import web
from hypothesis import example, given, settings
from hypothesis import strategies as st

from metricgate.components import default_registry
from metricgate.config import load_config_text
from metricgate.exporters.prometheus import PrometheusExporter
from metricgate.pipeline.service import Service
from metricgate.receivers.prometheus_remote_write import RemoteWriteReceiver
from metricgate.wire.remotewrite.schema import STALE_NAN_BITS, WriteRequest
from tests.support.poll import wait_until

CONFIG = """
receivers:
  prometheus_remote_write: {endpoint: "127.0.0.1:0"}
exporters:
  prometheus: {endpoint: "127.0.0.1:0"}
  prometheus_remote_write: {endpoint: "http://127.0.0.1:SINK/api/v1/write", flush_interval: 10ms,
                            target_info: {enabled: false}}
service:
  pipelines:
    metrics:
      receivers: [prometheus_remote_write]
      exporters: [prometheus, prometheus_remote_write]
  telemetry: {metrics: {address: ""}}
"""
HEADERS = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"}
MS = 1_700_000_000_000
NEGATIVE_ZERO = 0x8000_0000_0000_0000
EDGES = [
    0,
    NEGATIVE_ZERO,
    STALE_NAN_BITS,
    0x7FF8_0000_0000_0000,  # the usual quiet NaN
    0x7FF8_0000_0000_0001,  # Prometheus' ordinary NaN
    0xFFF8_0000_DEAD_BEEF,  # negative quiet NaN with a payload
    0x7FF0_0000_0000_0001,  # signalling NaN
    0x7FF0_0000_0000_0000,  # +Inf
    0xFFF0_0000_0000_0000,  # -Inf
    0x0000_0000_0000_0001,  # smallest subnormal
    0x8000_0000_0000_0001,  # its negative
    0x7FEF_FFFF_FFFF_FFFF,  # largest finite
]


def as_float(bits: int) -> float:
    value: float = struct.unpack("<d", bits.to_bytes(8, "little"))[0]
    return value


def bits_of(value: float) -> int:
    return int.from_bytes(struct.pack("<d", value), "little")


@dataclass
class Sink:
    """A remote-write backend keeping the value bits of every sample by series label `i`."""

    received: dict[str, list[int]] = field(default_factory=dict)

    async def handle(self, request: web.Request) -> web.Response:
        body = bytes(cramjam.snappy.decompress_raw(await request.read()))
        for series in WriteRequest.FromString(body).timeseries:
            index = next(label.value for label in series.labels if label.name == "i")
            self.received.setdefault(index, []).extend(bits_of(s.value) for s in series.samples)
        return web.Response(status=204)


@dataclass
class Gateway:
    url: str
    page_url: str
    sink: Sink

    async def write(self, values: list[int], timestamp: int = MS) -> None:
        request = WriteRequest()
        for index, bits in enumerate(values):
            series = request.timeseries.add()
            series.labels.add(name="__name__", value="value_bits")
            series.labels.add(name="i", value=str(index))
            series.samples.add(value=as_float(bits), timestamp=timestamp)
        body = cramjam.snappy.compress_raw(request.SerializeToString())
        async with (
            aiohttp.ClientSession() as session,
            session.post(self.url, data=bytes(body), headers=HEADERS) as reply,
        ):
            assert reply.status == 204, await reply.text()

    async def sent(self, count: int) -> dict[str, list[int]]:
        """What the sink got, once it holds `count` series."""
        await wait_until(lambda: len(self.sink.received) >= count)
        return self.sink.received

    async def page(self) -> str:
        async with aiohttp.ClientSession() as session, session.get(self.page_url) as reply:
            return await reply.text()


@asynccontextmanager
async def gateway() -> AsyncIterator[Gateway]:
    sink = Sink()
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/api/v1/write", sink.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = int(runner.addresses[0][1])
    config = load_config_text(CONFIG.replace("SINK", str(port)), default_registry(), {})
    service = Service(config)
    await service.start()
    try:
        receiver = service.receivers["prometheus_remote_write"]
        exporter = service.exporter_queues["prometheus"].exporter
        assert isinstance(receiver, RemoteWriteReceiver)
        assert isinstance(exporter, PrometheusExporter)
        yield Gateway(
            f"http://127.0.0.1:{receiver.port}/api/v1/write",
            f"http://127.0.0.1:{exporter.port}/metrics",
            sink,
        )
    finally:
        await service.shutdown(time.monotonic() + 5)
        await runner.cleanup()


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=200))
@example(EDGES)
def test_every_bit_pattern_is_sent_on_as_received(values: list[int]) -> None:
    async def round_trip() -> dict[str, list[int]]:
        async with gateway() as found:
            await found.write(values)
            return await found.sent(len(values))

    sent = asyncio.run(round_trip())
    assert sent == {str(i): [bits] for i, bits in enumerate(values)}


async def test_the_page_shows_negative_zero_and_nan_and_ends_stale_series() -> None:
    async with gateway() as found:
        await found.write([NEGATIVE_ZERO, 0, 0x7FF8_0000_0000_0001])
        await found.sent(3)
        page = await found.page()
        assert 'value_bits{i="0"} -0\n' in page
        assert 'value_bits{i="1"} 0\n' in page
        assert 'value_bits{i="2"} NaN\n' in page
        await found.write([STALE_NAN_BITS], MS + 1000)
        pages = [page]

        async def look() -> None:
            pages.append(await found.page())

        await wait_until(lambda: 'value_bits{i="0"}' not in pages[-1], look)
        assert 'value_bits{i="1"} 0\n' in pages[-1]
