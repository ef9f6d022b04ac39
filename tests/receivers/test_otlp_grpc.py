"""OTLP/gRPC against a running receiver: success, refusals with their codes, RetryInfo.

After every bad request, a good request from a fresh channel must still succeed.
"""

from __future__ import annotations

import math

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceResponse,
)

from metricgate.errors import PermanentError, RetryableError, UnavailableError
from metricgate.model import Batch
from metricgate.pipeline.host import Host
from metricgate.receivers.otlp import OtlpReceiver, OtlpReceiverConfig
from metricgate.telemetry import SelfMetrics
from tests.receivers.otlp_data import gauge, number, request, sum_metric
from tests.receivers.otlp_gateway import Gateway, running

METHOD = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
GOOD_BODY = request(
    sum_metric("requests", number(1.0), number(2.0, {"k": "v"}))
).SerializeToString()


async def export(
    gateway: Gateway, body: bytes, compression: grpc.Compression | None = None
) -> bytes:
    async with grpc.aio.insecure_channel(gateway.grpc_target) as channel:
        call = channel.unary_unary(METHOD, request_serializer=None, response_deserializer=None)
        response: bytes = await call(body, timeout=10, compression=compression)
        return response


async def refused(gateway: Gateway, body: bytes) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await export(gateway, body)
    return caught.value


async def still_serving(gateway: Gateway) -> None:
    before = gateway.capture.points()
    assert await export(gateway, GOOD_BODY) == b""
    await gateway.wait_for(lambda: gateway.capture.points() >= before + 2)


def retry_delay(error: grpc.aio.AioRpcError) -> tuple[float, float]:
    """The delay in grpc-status-details-bin and in google.rpc.retryinfo-bin."""
    metadata = dict(error.trailing_metadata() or ())
    found = status_pb2.Status.FromString(metadata["grpc-status-details-bin"])
    assert found.code == error.code().value[0] and found.message == error.details()
    (detail,) = found.details
    info = error_details_pb2.RetryInfo()
    assert detail.Unpack(info)
    python_sdk = error_details_pb2.RetryInfo.FromString(metadata["google.rpc.retryinfo-bin"])
    return (
        info.retry_delay.seconds + info.retry_delay.nanos / 1e9,
        python_sdk.retry_delay.seconds + python_sdk.retry_delay.nanos / 1e9,
    )


async def test_export_succeeds_plain_and_gzip() -> None:
    async with running() as gateway:
        assert await export(gateway, GOOD_BODY) == b""
        assert await export(gateway, GOOD_BODY, grpc.Compression.Gzip) == b""
        await gateway.wait_for(lambda: gateway.capture.points() == 4)
        assert gateway.counter("metricgate_receiver_accepted_points_total", transport="grpc") == 4
        assert (
            gateway.counter("metricgate_receiver_requests_total", transport="grpc", code="OK") == 2
        )


async def test_partial_success_and_nan() -> None:
    message = request(
        gauge("g", number(math.nan), number(math.inf, {"a": "b"}), number(1.0, time=0))
    )
    async with running() as gateway:
        response = ExportMetricsServiceResponse.FromString(
            await export(gateway, message.SerializeToString())
        )
        assert response.partial_success.rejected_data_points == 1
        assert "time_unix_nano is 0" in response.partial_success.error_message
        await gateway.wait_for(lambda: gateway.capture.points() == 2)


async def test_malformed_request_is_invalid_argument() -> None:
    async with running() as gateway:
        error = await refused(gateway, b"\x0a\xff\xff\xff")
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "invalid protobuf" in (error.details() or "")
        assert (
            gateway.counter(
                "metricgate_receiver_requests_total", transport="grpc", code="INVALID_ARGUMENT"
            )
            == 1
        )
        await still_serving(gateway)


async def test_oversized_request_is_refused_by_grpc() -> None:
    async with running() as gateway:
        big = request(gauge("g", *(number(1.0, {"pad": "x" * 1000, "i": i}) for i in range(1500))))
        error = await refused(gateway, big.SerializeToString())
        assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert not gateway.capture.batches
        await still_serving(gateway)


async def test_empty_request_succeeds_and_counts_nothing() -> None:
    async with running() as gateway:
        assert await export(gateway, b"") == b""
        assert not gateway.capture.batches
        assert gateway.counter("metricgate_receiver_accepted_points_total", transport="grpc") == 0
        await still_serving(gateway)


async def test_unknown_method_is_unimplemented() -> None:
    async with running() as gateway, grpc.aio.insecure_channel(gateway.grpc_target) as channel:
        call = channel.unary_unary(
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            request_serializer=None,
            response_deserializer=None,
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(b"", timeout=5)
        assert caught.value.code() is grpc.StatusCode.UNIMPLEMENTED
        await still_serving(gateway)


async def test_full_queue_is_resource_exhausted_with_retry_info() -> None:
    async with running(queue_size=1) as gateway:
        release = gateway.hold_exports()
        assert await export(gateway, GOOD_BODY) == b""  # with the (held) worker
        assert await export(gateway, GOOD_BODY) == b""  # fills the queue
        error = await refused(gateway, GOOD_BODY)
        assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "queue" in (error.details() or "")
        assert retry_delay(error) == (1.0, 1.0)
        assert (
            gateway.counter(
                "metricgate_receiver_refused_points_total", transport="grpc", reason="queue_full"
            )
            == 2
        )
        release.set()
        await gateway.wait_for(lambda: len(gateway.capture.batches) == 2)
        await still_serving(gateway)


async def test_memory_limit_is_resource_exhausted_with_retry_info() -> None:
    async with running() as gateway:
        gateway.service.host.memory.set_state(True, "test", retry_after=0.25)
        error = await refused(gateway, GOOD_BODY)
        assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert retry_delay(error) == (0.25, 0.25)
        gateway.service.host.memory.set_state(False)
        await still_serving(gateway)


async def test_compressed_bomb_is_refused_by_grpc() -> None:
    async with running() as gateway:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await export(gateway, bytes(64 << 20), grpc.Compression.Gzip)
        assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        await still_serving(gateway)


class _Refusing:
    def __init__(self, error: Exception) -> None:
        self.error = error

    async def consume(self, batch: Batch) -> None:
        raise self.error


@pytest.mark.parametrize(
    ("error", "code", "delay"),
    [
        (PermanentError("bad data"), grpc.StatusCode.INVALID_ARGUMENT, None),
        (UnavailableError("draining", retry_after=3), grpc.StatusCode.UNAVAILABLE, 3.0),
        (RetryableError("busy", retry_after=0.5), grpc.StatusCode.UNAVAILABLE, 0.5),
        (RuntimeError("a bug"), grpc.StatusCode.INTERNAL, None),
    ],
)
async def test_consumer_errors_map_to_status_codes(
    error: Exception, code: grpc.StatusCode, delay: float | None
) -> None:
    config = OtlpReceiverConfig.model_validate({"protocols": {"grpc": {"endpoint": "127.0.0.1:0"}}})
    receiver = OtlpReceiver("otlp", config, _Refusing(error))
    await receiver.start(Host(SelfMetrics()))
    try:
        assert receiver.http_port is None and receiver.grpc_port
        async with grpc.aio.insecure_channel(f"127.0.0.1:{receiver.grpc_port}") as channel:
            call = channel.unary_unary(METHOD, request_serializer=None, response_deserializer=None)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call(GOOD_BODY, timeout=5)
        assert caught.value.code() is code
        if delay is not None:
            assert retry_delay(caught.value) == (delay, delay)
    finally:
        await receiver.shutdown()
