"""OTLP/HTTP against a running receiver: success, every refusal, back-pressure, resource bounds.

After every bad request, a good request from a fresh client must still succeed.
"""

from __future__ import annotations

import functools
import gzip
import json
import math
import zlib
from collections.abc import AsyncIterator

import aiohttp
import cramjam
import pytest
from google.rpc import status_pb2
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceResponse,
)

from metricgate.config.types import parse_byte_size
from metricgate.errors import PermanentError, RetryableError, UnavailableError
from metricgate.model import Batch
from metricgate.pipeline.host import Host
from metricgate.receivers.otlp import OtlpReceiver, OtlpReceiverConfig
from metricgate.telemetry import SelfMetrics
from tests.receivers.otlp_data import gauge, number, request, sum_metric, to_json
from tests.receivers.otlp_gateway import Gateway, running
from tests.support.memory import peak_rss_growth

PROTOBUF = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}
GOOD = request(sum_metric("requests", number(1.0, {"route": "/"}), number(2.0, {"route": "/x"})))
GOOD_BODY = GOOD.SerializeToString()


async def post(
    url: str, body: bytes, headers: dict[str, str], method: str = "POST"
) -> tuple[int, dict[str, str], bytes]:
    async with (
        aiohttp.ClientSession(auto_decompress=False) as session,
        session.request(method, url, data=body, headers=headers) as response,
    ):
        return response.status, dict(response.headers), await response.read()


async def still_serving(gateway: Gateway) -> None:
    """A good request from a new client succeeds and reaches the exporter."""
    before = gateway.capture.points()
    status, _, _ = await post(gateway.http_url, GOOD_BODY, PROTOBUF)
    assert status == 200
    await gateway.wait_for(lambda: gateway.capture.points() >= before + 2)


def status_message(body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    if headers["Content-Type"].startswith("application/json"):
        document = json.loads(body)
        return document["code"], document["message"]
    found = status_pb2.Status.FromString(body)
    return found.code, found.message


async def test_protobuf_and_json_requests_are_accepted() -> None:
    async with running() as gateway:
        status, headers, body = await post(gateway.http_url, GOOD_BODY, PROTOBUF)
        assert status == 200 and headers["Content-Type"] == "application/x-protobuf"
        assert ExportMetricsServiceResponse.FromString(body) == ExportMetricsServiceResponse()
        status, headers, body = await post(gateway.http_url, to_json(GOOD), JSON)
        assert status == 200 and headers["Content-Type"].startswith("application/json")
        assert json.loads(body) == {}
        await gateway.wait_for(lambda: gateway.capture.points() == 4)
        accepted = gateway.counter("metricgate_receiver_accepted_points_total", transport="http")
        assert accepted == 4
        assert (
            gateway.counter("metricgate_receiver_requests_total", transport="http", code="200") == 2
        )


@pytest.mark.parametrize("as_json", [False, True])
async def test_invalid_points_are_reported_as_partial_success(as_json: bool) -> None:
    message = request(gauge("", number(1.0)), gauge("fine", number(2.0), number(3.0, time=0)))
    async with running() as gateway:
        body = to_json(message) if as_json else message.SerializeToString()
        status, _, answer = await post(gateway.http_url, body, JSON if as_json else PROTOBUF)
        assert status == 200
        if as_json:
            partial = json.loads(answer)["partialSuccess"]
            rejected, error = int(partial["rejectedDataPoints"]), partial["errorMessage"]
        else:
            response = ExportMetricsServiceResponse.FromString(answer).partial_success
            rejected, error = response.rejected_data_points, response.error_message
        assert rejected == 2
        assert "metric has no name" in error and "time_unix_nano is 0" in error
        await gateway.wait_for(lambda: gateway.capture.points() == 1)
        refused = gateway.counter(
            "metricgate_receiver_refused_points_total", transport="http", reason="invalid_point"
        )
        assert refused == 2


@pytest.mark.parametrize(
    ("body", "headers", "expected_status", "expected_text"),
    [
        (b"\x0a\xff\xff\xff", PROTOBUF, 400, "invalid protobuf"),
        (b'{"resourceMetrics": [', JSON, 400, "invalid JSON"),
        (b'{"resourceMetrics": 5}', JSON, 400, "expected an array"),
        (GOOD_BODY, {"Content-Type": "text/plain"}, 415, "unsupported Content-Type"),
        (GOOD_BODY, {**PROTOBUF, "Content-Encoding": "br"}, 415, "unsupported Content-Encoding"),
        (b"\x1f\x8b not gzip", {**PROTOBUF, "Content-Encoding": "gzip"}, 400, "compressed body"),
        (b"x" * (3 << 20), PROTOBUF, 413, "limit"),
    ],
)
async def test_bad_requests(
    body: bytes, headers: dict[str, str], expected_status: int, expected_text: str
) -> None:
    async with running() as gateway:
        status, answer_headers, answer = await post(gateway.http_url, body, headers)
        assert status == expected_status
        code, message = status_message(answer, answer_headers)
        # google.rpc.Code as gRPC would answer: RESOURCE_EXHAUSTED for too large, else
        # INVALID_ARGUMENT
        assert code == (8 if status == 413 else 3) and expected_text in message
        if status == 415 and "Content-Encoding" in headers:
            assert "gzip" in answer_headers["Accept-Encoding"]
        assert (
            gateway.counter(
                "metricgate_receiver_requests_total", transport="http", code=str(status)
            )
            == 1
        )
        await still_serving(gateway)
        assert gateway.counter("metricgate_receiver_accepted_points_total", transport="http") == 2


async def test_wrong_method() -> None:
    async with running() as gateway:
        status, headers, _ = await post(gateway.http_url, b"", PROTOBUF, method="GET")
        assert status == 405 and headers["Allow"] == "POST"
        status, _, _ = await post(gateway.http_url, b"", PROTOBUF, method="PUT")
        assert status == 405
        await still_serving(gateway)


async def test_oversized_chunked_body_without_length() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b"\x00" * (100 << 10)

    async with running() as gateway:
        async with (
            aiohttp.ClientSession() as session,
            session.post(gateway.http_url, data=chunks(), headers=PROTOBUF) as response,
        ):
            assert response.status == 413
        await still_serving(gateway)


@functools.cache
def gzip_bomb() -> bytes:
    """1 GiB of zeros as one gzip stream, about 1 MB on the wire."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(16 << 20)
    return b"".join(compressor.compress(zeros) for _ in range(64)) + compressor.flush()


@pytest.mark.parametrize("encoding", ["gzip", "zstd"])
async def test_decompression_bomb_is_refused_with_flat_memory(encoding: str) -> None:
    if encoding == "gzip":
        bomb = gzip_bomb()
    else:
        streamed = cramjam.zstd.Compressor()
        zeros = bytes(16 << 20)
        for _ in range(64):
            streamed.compress(zeros)
        bomb = bytes(streamed.finish())
    assert len(bomb) < parse_byte_size("2MiB")
    async with running() as gateway:
        await still_serving(gateway)  # warm up: buffers and caches exist before measuring
        headers = {**PROTOBUF, "Content-Encoding": encoding}
        with peak_rss_growth() as growth:
            status, answer_headers, answer = await post(gateway.http_url, bomb, headers)
        assert status == 413
        assert "exceeds" in status_message(answer, answer_headers)[1]
        assert growth[0] < 50 << 20, f"RSS grew by {growth[0] >> 20} MiB"
        await still_serving(gateway)


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "zstd", "snappy"])
async def test_compressed_requests(encoding: str) -> None:
    compressed = {
        "gzip": lambda b: gzip.compress(b),
        "deflate": lambda b: zlib.compress(b),
        "zstd": lambda b: bytes(cramjam.zstd.compress(b)),
        "snappy": lambda b: bytes(cramjam.snappy.compress_raw(b)),
    }[encoding](GOOD_BODY)
    async with running() as gateway:
        status, _, _ = await post(
            gateway.http_url, compressed, {**PROTOBUF, "Content-Encoding": encoding}
        )
        assert status == 200
        await gateway.wait_for(lambda: gateway.capture.points() == 2)


async def test_empty_requests_succeed_and_count_nothing() -> None:
    async with running() as gateway:
        for body, headers in ((b"", PROTOBUF), (b"{}", JSON), (b"", JSON)):
            status, _, _ = await post(gateway.http_url, body, headers)
            assert status == 200
        assert not gateway.capture.batches
        assert gateway.counter("metricgate_receiver_accepted_points_total", transport="http") == 0
        await still_serving(gateway)


async def test_nan_and_infinities_are_accepted() -> None:
    values = [math.nan, math.inf, -math.inf]
    message = request(gauge("g", *(number(v, {"i": i}) for i, v in enumerate(values))))
    async with running() as gateway:
        status, _, body = await post(gateway.http_url, message.SerializeToString(), PROTOBUF)
        assert status == 200
        assert not ExportMetricsServiceResponse.FromString(body).HasField("partial_success")
        await gateway.wait_for(lambda: gateway.capture.points() == 3)
        group = gateway.capture.batches[0].metrics[0]
        assert math.isnan(group.values[0]) and group.values[1:] == [math.inf, -math.inf]  # type: ignore[arg-type]


async def test_full_queue_answers_429_with_retry_after() -> None:
    async with running(queue_size=1) as gateway:
        release = gateway.hold_exports()
        statuses = []
        for _ in range(4):
            status, headers, body = await post(gateway.http_url, GOOD_BODY, PROTOBUF)
            statuses.append(status)
        # the first batch is with the (held) worker, the second fills the queue
        assert statuses == [200, 200, 429, 429]
        assert headers["Retry-After"] == "1"
        code, message = status_message(body, headers)
        assert code == 8 and "queue" in message
        assert (
            gateway.counter(
                "metricgate_receiver_refused_points_total", transport="http", reason="queue_full"
            )
            == 4
        )
        release.set()
        await gateway.wait_for(lambda: len(gateway.capture.batches) == 2)
        await still_serving(gateway)


async def test_memory_limiter_refusal_answers_429_before_reading() -> None:
    async with running() as gateway:
        gateway.service.host.memory.set_state(True, "test", retry_after=2.5)
        status, headers, _ = await post(gateway.http_url, GOOD_BODY, PROTOBUF)
        assert status == 429 and headers["Retry-After"] == "3"
        assert (
            gateway.counter("metricgate_receiver_requests_total", transport="http", code="429") == 1
        )
        gateway.service.host.memory.set_state(False)
        await still_serving(gateway)


class _Refusing:
    """A consumer that raises what it is told to."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.batches: list[Batch] = []

    async def consume(self, batch: Batch) -> None:
        self.batches.append(batch)
        raise self.error


@pytest.mark.parametrize(
    ("error", "expected_status", "retry_after"),
    [
        (PermanentError("bad data"), 400, None),
        (UnavailableError("shutting down", retry_after=4), 503, "4"),
        (RetryableError("busy", retry_after=0.2), 503, "1"),
        (RuntimeError("a bug"), 500, None),
    ],
)
async def test_consumer_errors_map_to_status_codes(
    error: Exception, expected_status: int, retry_after: str | None
) -> None:
    config = OtlpReceiverConfig.model_validate({"protocols": {"http": {"endpoint": "127.0.0.1:0"}}})
    consumer = _Refusing(error)
    receiver = OtlpReceiver("otlp", config, consumer)
    await receiver.start(Host(SelfMetrics()))
    try:
        assert receiver.grpc_port is None and receiver.http_port
        url = f"http://127.0.0.1:{receiver.http_port}/v1/metrics"
        status, headers, _ = await post(url, GOOD_BODY, PROTOBUF)
        assert status == expected_status
        assert headers.get("Retry-After") == retry_after
        assert consumer.batches
    finally:
        await receiver.shutdown()
        await receiver.shutdown()  # idempotent


async def test_refuses_to_start_on_pure_python_protobuf(monkeypatch: pytest.MonkeyPatch) -> None:
    from google.protobuf.internal import api_implementation

    monkeypatch.setattr(api_implementation, "Type", lambda: "python")
    config = OtlpReceiverConfig.model_validate({"protocols": {"http": None}})
    receiver = OtlpReceiver("otlp", config, _Refusing(RuntimeError()))
    with pytest.raises(RuntimeError, match="pure-Python"):
        await receiver.start(Host(SelfMetrics()))
    await receiver.shutdown()


async def test_shutdown_stops_accepting() -> None:
    async with running() as gateway:
        url = gateway.http_url
        await gateway.receiver.shutdown()
        with pytest.raises(aiohttp.ClientConnectionError):
            await post(url, GOOD_BODY, PROTOBUF)
    await gateway.receiver.shutdown()  # idempotent, also after the service stopped it
