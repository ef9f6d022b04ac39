"""The `prometheus_remote_write` receiver over HTTP: status codes, validation, the exporter page."""

from __future__ import annotations

import math
import struct
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
import cramjam
import pytest

from metricgate.config import load_config_text
from metricgate.errors import QueueFullError, UnavailableError
from metricgate.exporters.prometheus import PrometheusExporter
from metricgate.model import FLAG_NO_RECORDED_VALUE, Batch, MetricKind
from metricgate.pipeline.service import Service
from metricgate.receivers.prometheus_remote_write import RemoteWriteReceiver
from metricgate.wire.remotewrite.schema import (
    METRIC_TYPE_COUNTER,
    STALE_NAN_BITS,
    V2_CONTENT_TYPE,
    RequestV2,
)
from tests.support.capture import CaptureExporter, registry_with_capture
from tests.support.poll import wait_until
from tests.support.remote_write import NOW_MS, V1_HEADERS, v1

CONFIG = """
receivers:
  prometheus_remote_write: {endpoint: "127.0.0.1:0", max_request_body_size: 64KiB,
                            max_decompressed_size: 256KiB}
exporters:
  capture: {}
  prometheus: {endpoint: "127.0.0.1:0"}
service:
  pipelines:
    metrics: {receivers: [prometheus_remote_write], exporters: [capture, prometheus]}
  telemetry:
    metrics: {address: ""}
"""
STALE_NAN = struct.unpack("<d", STALE_NAN_BITS.to_bytes(8, "little"))[0]


@dataclass
class Gateway:
    service: Service
    receiver: RemoteWriteReceiver
    capture: CaptureExporter
    exporter: PrometheusExporter

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.receiver.port}/api/v1/write"

    async def post(
        self, body: bytes, headers: dict[str, str] | None = None, method: str = "POST"
    ) -> tuple[int, str, dict[str, str]]:
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, self.url, data=body, headers=headers or V1_HEADERS) as reply,
        ):
            return reply.status, await reply.text(), dict(reply.headers)

    async def page(self, needle: str) -> str:
        """The exporter's page, once it shows `needle` (exports run on their own task)."""
        text = [""]

        async def fetch() -> None:
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"http://127.0.0.1:{self.exporter.port}/metrics") as reply,
            ):
                text[0] = await reply.text()

        await wait_until(lambda: needle in text[0], fetch, 5)
        return text[0]

    def counter(self, name: str, **labels: str) -> float:
        value = self.service.telemetry.registry.get_sample_value(
            name, {"receiver": "prometheus_remote_write", **labels}
        )
        return value or 0.0


@asynccontextmanager
async def running() -> AsyncIterator[Gateway]:
    config = load_config_text(CONFIG, registry_with_capture(), {})
    service = Service(config)
    await service.start()
    try:
        receiver = service.receivers["prometheus_remote_write"]
        assert isinstance(receiver, RemoteWriteReceiver)
        exporter = service.exporter_queues["prometheus"].exporter
        assert isinstance(exporter, PrometheusExporter)
        yield Gateway(service, receiver, CaptureExporter.instances["capture"], exporter)
    finally:
        await service.shutdown(time.monotonic() + 5)


@pytest.fixture
async def gateway() -> AsyncIterator[Gateway]:
    async with running() as found:
        yield found


async def captured(gateway: Gateway, points: int) -> Batch:
    await wait_until(lambda: gateway.capture.points() >= points, timeout=5)
    return Batch([group for batch in gateway.capture.batches for group in batch])


UP = [("__name__", "up"), ("instance", "a:1"), ("job", "node")]


async def test_v1_samples_become_native_gauges(gateway: Gateway) -> None:
    status, text, _ = await gateway.post(v1((UP, [(1.0, NOW_MS), (0.0, NOW_MS + 1000)])))
    assert (status, text) == (204, "")
    batch = await captured(gateway, 2)
    [group] = batch.metrics
    assert group.metric.name == "up" and group.metric.kind is MetricKind.GAUGE
    assert group.metric.native_prometheus
    assert group.series[0].attributes == (("instance", "a:1"), ("job", "node"))
    assert group.values == [1.0, 0.0]
    assert group.timestamps == [NOW_MS * 1_000_000, (NOW_MS + 1000) * 1_000_000]
    needle = 'up{instance="a:1",job="node"} 0'
    assert needle in await gateway.page(needle)
    assert gateway.counter("metricgate_receiver_accepted_points_total", transport="http") == 2


async def test_counter_metadata_keeps_the_name_exactly(gateway: Gateway) -> None:
    requests_total = [("__name__", "http_requests_total"), ("code", "200")]
    bare = [("__name__", "jobs_done"), ("code", "200")]
    body = v1(
        (requests_total, [(7.0, NOW_MS)]),
        (bare, [(3.0, NOW_MS)]),
        metadata=(("http_requests_total", METRIC_TYPE_COUNTER), ("jobs_done", METRIC_TYPE_COUNTER)),
    )
    assert (await gateway.post(body))[0] == 204
    page = await gateway.page("jobs_done{")
    assert "# TYPE http_requests_total counter" in page
    assert 'http_requests_total{code="200"} 7' in page
    assert "http_requests_total_total" not in page
    assert "# TYPE jobs_done counter" in page and 'jobs_done{code="200"} 3' in page
    batch = await captured(gateway, 2)
    assert all(g.metric.is_counter for g in batch.metrics)


async def test_metadata_arriving_later_retypes_and_ends_the_gauge(gateway: Gateway) -> None:
    series = [("__name__", "late_total"), ("job", "x")]
    assert (await gateway.post(v1((series, [(1.0, NOW_MS)]))))[0] == 204
    assert "# TYPE late_total gauge" in await gateway.page("late_total{")
    metadata_only = v1(metadata=(("late_total", METRIC_TYPE_COUNTER),))
    assert (await gateway.post(metadata_only))[0] == 204
    assert (await gateway.post(v1((series, [(2.0, NOW_MS + 1)]))))[0] == 204
    page = await gateway.page('late_total{job="x"} 2')
    assert "# TYPE late_total counter" in page and 'late_total{job="x"} 2' in page
    batch = await captured(gateway, 3)
    stale = [g for g in batch.metrics if g.flags and g.flags[0] & FLAG_NO_RECORDED_VALUE]
    assert stale and stale[0].metric.kind is MetricKind.GAUGE


async def test_stale_nan_is_a_staleness_marker_and_plain_nan_is_a_value(gateway: Gateway) -> None:
    body = v1((UP, [(math.nan, NOW_MS), (STALE_NAN, NOW_MS + 1)]))
    assert (await gateway.post(body))[0] == 204
    [group] = (await captured(gateway, 2)).metrics
    assert group.flags == [0, FLAG_NO_RECORDED_VALUE]


@pytest.mark.parametrize(
    ("labels", "needle"),
    [
        ([("__name__", "up"), ("job", "x"), ("job", "y")], "duplicate label 'job'"),
        ([("__name__", "1up"), ("job", "x")], "invalid metric name '1up'"),
        ([("__name__", "up"), ("jo-b", "x")], "invalid label name 'jo-b'"),
        ([("job", "x")], "no __name__ label"),
    ],
)
async def test_invalid_series_get_400_and_valid_ones_are_written(
    gateway: Gateway, labels: list[tuple[str, str]], needle: str
) -> None:
    status, text, _ = await gateway.post(v1((labels, [(1.0, NOW_MS)]), (UP, [(1.0, NOW_MS)])))
    assert status == 400
    assert needle in text and "1 invalid series" in text
    batch = await captured(gateway, 1)
    assert [g.metric.name for g in batch.metrics] == ["up"]
    assert (
        gateway.counter(
            "metricgate_receiver_refused_points_total", transport="http", reason="invalid_series"
        )
        == 1
    )
    assert (await gateway.post(v1((UP, [(2.0, NOW_MS + 5)]))))[0] == 204


@pytest.mark.parametrize(
    ("body", "headers", "status", "needle"),
    [
        (b"\x00\x01garbage", V1_HEADERS, 400, "invalid snappy"),
        (
            bytes(cramjam.snappy.compress(b"\x0a\x00")),
            V1_HEADERS,
            400,
            "framed snappy",
        ),
        (bytes(cramjam.snappy.compress_raw(b"\xff\xff\xff")), V1_HEADERS, 400, "WriteRequest"),
        (b"", {**V1_HEADERS, "Content-Type": "application/json"}, 415, "Content-Type"),
        (b"", {**V1_HEADERS, "Content-Encoding": "gzip"}, 415, "Content-Encoding"),
        (b"\x00" * 70_000, V1_HEADERS, 413, "limit"),
        (
            bytes(cramjam.snappy.compress_raw(b"\x00" * 300_000)),
            V1_HEADERS,
            413,
            "declares",
        ),
    ],
)
async def test_bad_requests(
    gateway: Gateway, body: bytes, headers: dict[str, str], status: int, needle: str
) -> None:
    got, text, _ = await gateway.post(body, headers)
    assert got == status, text
    assert needle in text
    assert (await gateway.post(v1((UP, [(1.0, NOW_MS)]))))[0] == 204


async def test_other_methods_get_405(gateway: Gateway) -> None:
    status, _, headers = await gateway.post(b"", method="PUT")
    assert status == 405 and headers["Allow"] == "POST"


@pytest.mark.parametrize(
    ("error", "status"), [(QueueFullError("full", 2.5), 429), (UnavailableError("down"), 503)]
)
async def test_back_pressure_asks_to_retry(gateway: Gateway, error: Exception, status: int) -> None:
    async def refuse(batch: Batch) -> None:
        raise error

    gateway.receiver.next_consumer = type("C", (), {"consume": staticmethod(refuse)})()
    server = gateway.receiver._server
    assert server is not None
    server.core.consumer = gateway.receiver.next_consumer
    got, _, headers = await gateway.post(v1((UP, [(1.0, NOW_MS)])))
    assert got == status
    assert int(headers["Retry-After"]) >= 1


async def test_memory_limit_refuses_before_reading(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    from metricgate.errors import MemoryLimitError

    def over() -> None:
        raise MemoryLimitError("over the soft limit", 3.0)

    server = gateway.receiver._server
    assert server is not None
    monkeypatch.setattr(server.core.host.memory, "check", over)
    got, _, headers = await gateway.post(v1((UP, [(1.0, NOW_MS)])))
    assert got == 429 and headers["Retry-After"] == "3"


async def test_v2_request_with_symbols_and_written_header(gateway: Gateway) -> None:
    request = RequestV2(symbols=["", "__name__", "ops_total", "job", "w", "counts ops"])
    series = request.timeseries.add(labels_refs=[1, 2, 3, 4], created_timestamp=NOW_MS - 10)
    series.samples.add(value=5.0, timestamp=NOW_MS)
    series.samples.add(value=6.0, timestamp=NOW_MS + 1)
    series.metadata.type = METRIC_TYPE_COUNTER
    series.metadata.help_ref = 5
    histogram_only = request.timeseries.add(labels_refs=[1, 2, 3, 4])
    histogram_only.histograms.add(count_int=1, timestamp=NOW_MS)
    body = bytes(cramjam.snappy.compress_raw(request.SerializeToString()))
    headers = {**V1_HEADERS, "Content-Type": V2_CONTENT_TYPE}
    status, _, answer = await gateway.post(body, headers)
    assert status == 204
    assert answer["X-Prometheus-Remote-Write-Samples-Written"] == "2"
    assert answer["X-Prometheus-Remote-Write-Histograms-Written"] == "0"
    [group] = (await captured(gateway, 2)).metrics
    assert group.metric.is_counter and group.metric.description == "counts ops"
    assert group.start_timestamps == [(NOW_MS - 10) * 1_000_000] * 2
    page = await gateway.page("ops_total{")
    assert "# TYPE ops_total counter" in page and 'ops_total{job="w"} 6' in page
    assert (
        gateway.counter(
            "metricgate_receiver_refused_points_total", transport="http", reason="native_histogram"
        )
        == 1
    )


async def test_v2_bad_symbol_reference_is_400(gateway: Gateway) -> None:
    request = RequestV2(symbols=["", "__name__", "up"])
    request.timeseries.add(labels_refs=[1, 9]).samples.add(value=1.0, timestamp=NOW_MS)
    body = bytes(cramjam.snappy.compress_raw(request.SerializeToString()))
    status, text, _ = await gateway.post(body, {**V1_HEADERS, "Content-Type": V2_CONTENT_TYPE})
    assert status == 400 and "symbols" in text


async def test_unknown_proto_parameter_is_415(gateway: Gateway) -> None:
    headers = {**V1_HEADERS, "Content-Type": "application/x-protobuf;proto=foo.Bar"}
    assert (await gateway.post(v1((UP, [(1.0, NOW_MS)])), headers))[0] == 415
