"""Remote-write exporter test support: decoding what it sends, and a controllable local receiver.

`Receiver` + `serve` stand in for a remote-write backend (answers, delays, what it saw);
`exporter` runs a remote-write exporter behind its sending queue, as in a gateway.
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import cramjam
from aiohttp import web

from metricgate.exporters.prometheus_remote_write import (
    Encoder,
    Fragment,
    RemoteWriteExporter,
    RemoteWriteExporterConfig,
)
from metricgate.model import (
    INTERNER,
    Batch,
    HistogramPoint,
    MetricKind,
    MetricPoints,
    SummaryPoint,
)
from metricgate.pipeline.host import Host
from metricgate.pipeline.lanes import Lanes
from metricgate.pipeline.queue import ExporterQueue
from metricgate.telemetry import SelfMetrics
from metricgate.translate import PrometheusTranslator
from metricgate.wire.remotewrite import schema
from metricgate.wire.remotewrite.schema import (
    WriteRequest,
)
from tests.support.batches import metric, number_batch

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


NS = 1_700_000_000_000_000_000
Answer = Callable[[int], web.Response | None]


@dataclass
class Receiver:
    """Answers each request with `answer(attempt)` (None: 204) and records what it saw."""

    answer: Answer = lambda _: None
    delay: Callable[[], float] = lambda: 0.0
    accepted: list[Sample] = field(default_factory=list)
    attempts: list[tuple[float, list[Sample]]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        samples = samples_of(decode_compressed(body))
        self.headers.append(dict(request.headers))
        self.attempts.append((time.monotonic(), samples))
        await asyncio.sleep(self.delay())
        response = self.answer(len(self.attempts))
        if response is None:
            self.accepted.extend(samples)
            return web.Response(status=204)
        return response


@asynccontextmanager
async def serve(receiver: Receiver, port: int = 0) -> AsyncIterator[int]:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/api/v1/write", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()


@dataclass
class Sending:
    """A remote-write exporter behind its sending queue, as the gateway runs it."""

    queue: ExporterQueue
    exporter: RemoteWriteExporter

    async def export(self, batch: Batch) -> None:
        await self.queue.consume(batch)

    @property
    def lanes(self) -> Lanes:
        assert self.queue.lanes is not None
        return self.queue.lanes


@asynccontextmanager
async def exporter(port: int, **overrides: Any) -> AsyncIterator[tuple[Sending, Host]]:
    settings: dict[str, Any] = {
        "endpoint": f"http://127.0.0.1:{port}/api/v1/write",
        "flush_interval": 0.01,
        "target_info": {"enabled": False},
        "headers": {"X-Scope-OrgID": "tenant-1"},
    }
    settings.update(overrides)
    host = Host(SelfMetrics())
    config = RemoteWriteExporterConfig(**settings)
    exp = RemoteWriteExporter("prometheus_remote_write", config)
    queue = ExporterQueue(exp, config.sending_queue, config.retry_on_failure)
    await queue.start(host)
    try:
        yield Sending(queue, exp), host
    finally:
        await queue.shutdown(time.monotonic() + 2)


def metric_value(host: Host, name: str, **labels: str) -> float:
    value = host.telemetry.registry.get_sample_value(
        name, {"exporter": "prometheus_remote_write", **labels}
    )
    return value or 0.0


def gauges(n: int, timestamp: int = NS) -> Any:
    return number_batch(
        {f"s{i}": float(i) for i in range(n)}, name="g", kind=MetricKind.GAUGE, timestamp=timestamp
    )


V1_HEADERS = {
    "Content-Type": "application/x-protobuf",
    "Content-Encoding": "snappy",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}


def v1(
    *series: tuple[list[tuple[str, str]], list[tuple[float, int]]],
    metadata: tuple[tuple[str, int], ...] = (),
) -> bytes:
    request = WriteRequest()
    for labels, samples in series:
        message = request.timeseries.add()
        for name, text in labels:
            message.labels.add(name=name, value=text)
        for value, timestamp in samples:
            message.samples.add(value=value, timestamp=timestamp)
    for family, metric_type in metadata:
        request.metadata.add(metric_family_name=family, type=metric_type, help=f"{family} help")
    return bytes(cramjam.snappy.compress_raw(request.SerializeToString()))


NOW_MS = int(time.time() * 1000)


def encoder(**kwargs: object) -> Encoder:
    return Encoder(PrometheusTranslator(), target_info=False, **kwargs)  # type: ignore[arg-type]


def bounds_batch() -> Batch:
    """A histogram with bounds from 0.005 to 1e6, a repeated quantile and a repeated bound."""
    hist = metric("upload", MetricKind.HISTOGRAM, unit="By")
    summary = metric("rpc", MetricKind.SUMMARY)
    repeated = metric("repeated", MetricKind.HISTOGRAM, unit="s")
    groups = []
    for m, value in (
        (hist, HistogramPoint(6, 9.0, (0.005, 1.0, 10.0, 1e6), (1, 1, 1, 1, 2))),
        (summary, SummaryPoint(4, 3.0, ((0.5, 0.1), (0.5, 0.2), (0.9, 0.7)))),
        (repeated, HistogramPoint(6, 6.0, (1.0, 1.0, 2.0), (1, 2, 3, 0))),
    ):
        points = MetricPoints(m)
        points.append(INTERNER.intern_series(m, ()), value, NS)
        groups.append(points)
    return Batch(groups)
