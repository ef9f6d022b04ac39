"""Remote-write 2.0 sending: into metricgate's own receiver, and falling back to 1.0 on a 415."""

from __future__ import annotations

import logging
import math
import struct
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cramjam
import pytest
from aiohttp import web

from metricgate.config import load_config_text
from metricgate.exporters.prometheus_remote_write.client import Outcome
from metricgate.model import FLAG_NO_RECORDED_VALUE, Batch, MetricKind
from metricgate.pipeline.service import Service
from metricgate.receivers.prometheus_remote_write import RemoteWriteReceiver
from metricgate.wire.remotewrite.schema import V2_CONTENT_TYPE, RequestV2
from tests.support.batches import number_batch
from tests.support.capture import CaptureExporter, registry_with_capture
from tests.support.poll import wait_until
from tests.support.remote_write import (
    NS,
    STALE_BITS,
    Receiver,
    Sample,
    decode_compressed,
    exporter,
    gauges,
    metric_value,
    samples_of,
    serve,
)

V2 = "io.prometheus.write.v2.Request"
MS = NS // 1_000_000


def samples_of_v2(payload: bytes) -> list[Sample]:
    request: Any = RequestV2.FromString(bytes(cramjam.snappy.decompress_raw(payload)))
    symbols = list(request.symbols)
    assert symbols[0] == ""
    out: list[Sample] = []
    for series in request.timeseries:
        refs = series.labels_refs
        labels = tuple((symbols[refs[i]], symbols[refs[i + 1]]) for i in range(0, len(refs), 2))
        for sample in series.samples:
            bits = struct.unpack("<Q", struct.pack("<d", sample.value))[0]
            value: float | str = "stale" if bits == STALE_BITS else sample.value
            out.append((labels, value, sample.timestamp))
    return out


@dataclass
class ProtocolReceiver(Receiver):
    """Decodes 1.0 and 2.0; answers 2.0 with 415 unless `speaks_v2` (then `written` samples)."""

    speaks_v2: bool = False
    written: int | None = None
    protocols: list[str] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        v2 = request.headers.get("Content-Type") == V2_CONTENT_TYPE
        self.protocols.append("2.0" if v2 else "1.0")
        self.headers.append(dict(request.headers))
        body = await request.read()
        if v2 and not self.speaks_v2:
            return web.Response(status=415, text="remote-write 2.0 is not supported")
        samples = samples_of_v2(body) if v2 else samples_of(decode_compressed(body))
        self.attempts.append((time.monotonic(), samples))
        self.accepted.extend(samples)
        written = len(samples) if self.written is None else self.written
        headers = {"X-Prometheus-Remote-Write-Samples-Written": str(written)} if v2 else {}
        return web.Response(status=204, headers=headers)


def protocol_gauge(host: Any) -> dict[str, float]:
    return {
        protocol: metric_value(host, "metricgate_exporter_remote_write_protocol", protocol=protocol)
        for protocol in ("1.0", "2.0")
    }


async def test_v2_headers_body_and_written_count(caplog: pytest.LogCaptureFixture) -> None:
    receiver = ProtocolReceiver(speaks_v2=True, written=3)
    caplog.set_level(logging.DEBUG, "metricgate.exporters.prometheus_remote_write")
    async with serve(receiver) as port, exporter(port, protobuf_message=V2) as (exp, host):
        assert protocol_gauge(host) == {"1.0": 0.0, "2.0": 1.0}
        await exp.export(gauges(10))
        await wait_until(lambda: len(receiver.accepted) == 10)
        await wait_until(lambda: metric_value(host, "metricgate_exporter_sent_points_total") == 10)
        receiver.written = None
        await exp.export(gauges(1, NS + 10**9))  # a resend of the first would arrive before it
        await wait_until(lambda: len(receiver.accepted) == 11)
    assert receiver.protocols == ["2.0", "2.0"], "a short write count must not cause a resend"
    headers = receiver.headers[0]
    assert headers["Content-Type"] == V2_CONTENT_TYPE
    assert headers["X-Prometheus-Remote-Write-Version"] == "2.0.0"
    assert headers["Content-Encoding"] == "snappy"
    assert headers["X-Scope-OrgID"] == "tenant-1"
    by_key = {dict(labels)["k"]: (value, ts) for labels, value, ts in receiver.accepted[:10]}
    assert by_key == {f"s{i}": (float(i), MS) for i in range(10)}
    assert any("fewer samples" in r.message for r in caplog.records)


@pytest.mark.parametrize("durable", [False, True])
async def test_415_falls_back_to_v1_once_and_loses_nothing(
    durable: bool, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    receiver = ProtocolReceiver()
    overrides: dict[str, Any] = {"protobuf_message": V2, "shards": {"min": 3, "max": 3}}
    if durable:
        overrides["sending_queue"] = {"storage": {"directory": str(tmp_path)}}
    caplog.set_level(logging.WARNING)
    async with serve(receiver) as port, exporter(port, **overrides) as (exp, host):
        assert exp.exporter.client.v2
        await exp.export(gauges(60))
        await wait_until(lambda: len(receiver.accepted) == 60)
        assert not exp.exporter.client.v2
        assert protocol_gauge(host) == {"1.0": 1.0, "2.0": 0.0}
        refused = len(receiver.protocols) - len(receiver.attempts)
        assert 1 <= refused <= 3 and receiver.protocols[0] == "2.0"
        await exp.export(gauges(60, NS + 10**9))
        await wait_until(lambda: len(receiver.accepted) == 120)
        await wait_until(lambda: metric_value(host, "metricgate_exporter_sent_points_total") == 120)
        await exp.export(gauges(1, NS + 2 * 10**9))  # a resend would arrive before it
        await wait_until(lambda: len(receiver.accepted) == 121)
        failed = "metricgate_exporter_send_failed_points_total"
        assert metric_value(host, failed, reason="permanent") == 0
        assert metric_value(host, "metricgate_exporter_retries_total") == 0
    assert len(receiver.accepted) == len(set(receiver.accepted)) == 121
    assert set(receiver.protocols[refused:]) == {"1.0"}
    assert receiver.protocols.count("2.0") == refused
    warnings = [r for r in caplog.records if "refused protocol 2.0" in r.message]
    assert len(warnings) == 1


async def test_v1_by_default_never_sends_v2() -> None:
    receiver = ProtocolReceiver(speaks_v2=True)
    async with serve(receiver) as port, exporter(port) as (exp, host):
        assert protocol_gauge(host) == {"1.0": 1.0, "2.0": 0.0}
        await exp.export(gauges(5))
        await wait_until(lambda: len(receiver.accepted) == 5)
    assert receiver.protocols == ["1.0"]


RECEIVER_CONFIG = """
receivers:
  prometheus_remote_write: {endpoint: "127.0.0.1:0"}
exporters:
  capture: {}
service:
  pipelines:
    metrics: {receivers: [prometheus_remote_write], exporters: [capture]}
  telemetry:
    metrics: {address: ""}
"""


@asynccontextmanager
async def metricgate_receiver() -> AsyncIterator[tuple[int, CaptureExporter]]:
    service = Service(load_config_text(RECEIVER_CONFIG, registry_with_capture(), {}))
    await service.start()
    try:
        receiver = service.receivers["prometheus_remote_write"]
        assert isinstance(receiver, RemoteWriteReceiver)
        yield receiver.port, CaptureExporter.instances["capture"]
    finally:
        await service.shutdown(time.monotonic() + 5)


def received(capture: CaptureExporter) -> dict[tuple[str, str], list[tuple[int, float, int]]]:
    """(metric, series `k`) -> [(time ns, value, flags)] as the receiver handed them on."""
    out: dict[tuple[str, str], list[tuple[int, float, int]]] = {}
    for group in Batch([g for batch in capture.batches for g in batch]).metrics:
        for i, series in enumerate(group.series):
            key = (group.metric.name, dict(series.attributes).get("k", ""))
            value = group.values[i]
            flags = group.flags[i] if group.flags else 0
            out.setdefault(key, []).append((group.timestamps[i], value, flags))
    return out


async def test_end_to_end_v2_into_metricgates_receiver() -> None:
    sends: list[tuple[bool, Outcome]] = []
    async with (
        metricgate_receiver() as (port, capture),
        exporter(port, protobuf_message=V2) as (exp, _),
    ):
        client = exp.exporter.client
        send = client.send

        async def spy(payload: bytes, v2: bool = False, tenant: str = "") -> Outcome:
            outcome = await send(payload, v2, tenant)
            sends.append((v2, outcome))
            return outcome

        client.send = spy  # type: ignore[method-assign]
        first = number_batch(
            {"a": 1.5, "b": 0.0, "c": math.nan, "é ü": -2.25},
            name="load",
            kind=MetricKind.GAUGE,
            timestamp=NS,
        )
        await exp.export(first)
        await wait_until(lambda: capture.points() == 4)
        ended = number_batch({"a": 0.0}, name="load", kind=MetricKind.GAUGE, timestamp=NS + 10**9)
        ended.metrics[0].flags[0] = FLAG_NO_RECORDED_VALUE
        ended.metrics[0].values[0] = math.nan
        await exp.export(ended)
        await wait_until(lambda: capture.points() == 5)
        assert exp.exporter.client.v2
    assert sends and all(v2 and outcome.status == 204 for v2, outcome in sends)
    assert sum(outcome.samples_written or 0 for _, outcome in sends) == 5
    got = received(capture)
    assert set(got) == {("load", "a"), ("load", "b"), ("load", "c"), ("load", "é ü")}
    assert got[("load", "b")] == [(NS, 0.0, 0)]
    assert got[("load", "é ü")] == [(NS, -2.25, 0)]
    [(ts, value, flags)] = got[("load", "c")]
    assert (ts, flags) == (NS, 0) and math.isnan(value)
    (ts, value, flags), (stale_ts, _, stale_flags) = got[("load", "a")]
    assert (ts, value, flags) == (NS, 1.5, 0)
    assert (stale_ts, stale_flags) == (NS + 10**9, FLAG_NO_RECORDED_VALUE)
