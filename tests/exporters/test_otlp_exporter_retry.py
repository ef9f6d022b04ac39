"""The otlp exporter behind the shared sending queue: what is retried, what is dropped."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import grpc
import pytest
from aiohttp import web
from grpc import aio
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)

from metricgate.errors import PermanentError, RetryableError
from metricgate.exporters.otlp import OtlpExporter, OtlpExporterConfig
from metricgate.exporters.otlp.status import grpc_error, http_error
from metricgate.pipeline.host import Host
from metricgate.pipeline.queue import ExporterQueue, QueueSettings, RetrySettings
from metricgate.receivers.otlp import responses
from metricgate.telemetry.metrics import SelfMetrics
from tests.support.otlp_batches import every_kind_batch
from tests.support.poll import wait_until

SERVICE = "opentelemetry.proto.collector.metrics.v1.MetricsService"
OK_BODY: bytes = ExportMetricsServiceResponse().SerializeToString()
Abort = Callable[[aio.ServicerContext[bytes, bytes]], Awaitable[None]] | None
Answer = tuple[int, dict[str, str], bytes]


@asynccontextmanager
async def http_backend(answers: list[Answer]) -> AsyncIterator[tuple[str, list[bytes]]]:
    """A backend answering with `answers` in order (the last repeats); yields (url, bodies)."""
    bodies: list[bytes] = []

    async def handle(request: web.Request) -> web.Response:
        bodies.append(await request.read())
        status, headers, body = answers[min(len(bodies), len(answers)) - 1]
        return web.Response(status=status, headers=headers, body=body)

    app = web.Application()
    app.router.add_post("/v1/metrics", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", bodies
    finally:
        await runner.cleanup()


@asynccontextmanager
async def grpc_backend(
    answers: list[Abort],
) -> AsyncIterator[tuple[str, list[bytes]]]:
    """A gRPC backend; each answer is None (success) or a coroutine function aborting the call."""
    bodies: list[bytes] = []

    async def export(request: bytes, context: aio.ServicerContext[bytes, bytes]) -> bytes:
        bodies.append(request)
        answer = answers[min(len(bodies), len(answers)) - 1]
        if answer is not None:
            await answer(context)
        return OK_BODY

    server = aio.server()
    handler = grpc.unary_unary_rpc_method_handler(export)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE, {"Export": handler}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}", bodies
    finally:
        await server.stop(0)


def _abort(code: grpc.StatusCode, retry_after: float | None = None) -> Abort:
    async def abort(context: aio.ServicerContext[bytes, bytes]) -> None:
        metadata: tuple[tuple[str, str | bytes], ...] = ()
        if retry_after is not None:
            details = responses.status(code.value[0], "busy", False, retry_after)
            metadata = (("grpc-status-details-bin", details),)
        await context.abort(code, "busy", metadata)

    return abort


@asynccontextmanager
async def queued(endpoint: str, protocol: str) -> AsyncIterator[tuple[ExporterQueue, SelfMetrics]]:
    config = OtlpExporterConfig.model_validate(
        {"endpoint": endpoint, "protocol": protocol, "timeout": "2s", "tls": {"insecure": True}}
    )
    queue = ExporterQueue(
        OtlpExporter("otlp", config),
        QueueSettings(num_consumers=1),
        RetrySettings(initial_interval=0.01, max_interval=0.05, max_elapsed_time=10),
    )
    telemetry = SelfMetrics()
    await queue.start(Host(telemetry))
    try:
        yield queue, telemetry
    finally:
        await queue.shutdown(time.monotonic() + 2)


def _sample(telemetry: SelfMetrics, name: str, **labels: str) -> float:
    found = telemetry.registry.get_sample_value(name, {"exporter": "otlp", **labels})
    return found or 0.0


async def _settled(telemetry: SelfMetrics, points: int) -> None:
    """Wait until every point of the export was counted sent or failed."""

    def settled() -> bool:
        sent = _sample(telemetry, "metricgate_exporter_sent_points_total")
        failed = sum(
            _sample(telemetry, "metricgate_exporter_send_failed_points_total", reason=reason)
            for reason in ("permanent", "retries_exhausted")
        )
        return sent + failed >= points

    await wait_until(settled, timeout=8)


async def test_http_503_with_retry_after_then_200_delivers_once() -> None:
    batch = every_kind_batch()
    answers: list[Answer] = [(503, {"Retry-After": "1"}, b"overloaded"), (200, {}, OK_BODY)]
    async with http_backend(answers) as (url, bodies), queued(url, "http") as (queue, telemetry):
        started = time.monotonic()
        queue.enqueue(batch)
        await _settled(telemetry, batch.point_count())
        elapsed = time.monotonic() - started
    assert len(bodies) == 2
    assert elapsed >= 0.95, "Retry-After was not honoured"
    assert _sample(telemetry, "metricgate_exporter_sent_points_total") == batch.point_count()
    assert _sample(telemetry, "metricgate_exporter_retries_total") == 1
    delivered = ExportMetricsServiceRequest.FromString(bodies[1])  # aiohttp un-gzipped it
    assert len(delivered.resource_metrics) == 2


async def test_http_400_is_dropped_at_once_and_counted() -> None:
    batch = every_kind_batch()
    status_body = responses.status(3, "bad data", False)
    async with (
        http_backend([(400, {}, status_body)]) as (url, bodies),
        queued(url, "http") as (queue, telemetry),
    ):
        queue.enqueue(batch)
        await _settled(telemetry, batch.point_count())
    assert len(bodies) == 1
    dropped = _sample(telemetry, "metricgate_exporter_send_failed_points_total", reason="permanent")
    assert dropped == batch.point_count()
    assert _sample(telemetry, "metricgate_exporter_retries_total") == 0


async def test_grpc_unavailable_with_retry_info_then_ok_delivers_once() -> None:
    batch = every_kind_batch()
    answers = [_abort(grpc.StatusCode.UNAVAILABLE, 0.5), None]
    async with grpc_backend(answers) as (target, bodies), queued(target, "grpc") as (q, telemetry):
        started = time.monotonic()
        q.enqueue(batch)
        await _settled(telemetry, batch.point_count())
        elapsed = time.monotonic() - started
    assert len(bodies) == 2
    assert elapsed >= 0.45, "RetryInfo delay was not honoured"
    assert _sample(telemetry, "metricgate_exporter_sent_points_total") == batch.point_count()


async def test_grpc_invalid_argument_is_dropped_at_once() -> None:
    batch = every_kind_batch()
    answers = [_abort(grpc.StatusCode.INVALID_ARGUMENT)]
    async with grpc_backend(answers) as (target, bodies), queued(target, "grpc") as (q, telemetry):
        q.enqueue(batch)
        await _settled(telemetry, batch.point_count())
    assert len(bodies) == 1
    dropped = _sample(telemetry, "metricgate_exporter_send_failed_points_total", reason="permanent")
    assert dropped == batch.point_count()


async def test_unreachable_backend_is_retryable() -> None:
    config = OtlpExporterConfig.model_validate(
        {"endpoint": "http://127.0.0.1:9", "protocol": "http", "timeout": "1s"}
    )
    exporter = OtlpExporter("otlp", config)
    await exporter.start(Host(SelfMetrics()))
    try:
        with pytest.raises(RetryableError):
            await exporter.export(every_kind_batch())
    finally:
        await exporter.shutdown()


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(429, True), (502, True), (503, True), (504, True), (400, False), (401, False),
     (403, False), (404, False), (413, False), (500, False)],
)  # fmt: skip
def test_http_status_classification(status: int, retryable: bool) -> None:
    error = http_error(status, b"", "3")
    assert isinstance(error, RetryableError if retryable else PermanentError)
    if retryable:
        assert isinstance(error, RetryableError) and error.retry_after == 3.0


@pytest.mark.parametrize(
    ("code", "with_info", "retryable"),
    [
        (grpc.StatusCode.UNAVAILABLE, False, True),
        (grpc.StatusCode.DEADLINE_EXCEEDED, False, True),
        (grpc.StatusCode.ABORTED, False, True),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, True, True),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, False, False),
        (grpc.StatusCode.INVALID_ARGUMENT, False, False),
        (grpc.StatusCode.UNAUTHENTICATED, False, False),
    ],
)
def test_grpc_status_classification(
    code: grpc.StatusCode, with_info: bool, retryable: bool
) -> None:
    metadata: list[tuple[str, str | bytes]] = []
    if with_info:
        details = responses.status(code.value[0], "slow down", False, 2.5)
        metadata.append(("grpc-status-details-bin", details))
    error = grpc_error(code, "x", metadata)
    assert isinstance(error, RetryableError if retryable else PermanentError)
    if with_info:
        assert isinstance(error, RetryableError) and error.retry_after == 2.5


def test_status_body_message_and_garbage() -> None:
    body = responses.status(3, "points are bad", False)
    assert str(http_error(400, body, None)) == "HTTP 400: points are bad"
    assert str(http_error(400, b"plain text", None)) == "HTTP 400: plain text"
    garbage = [("grpc-status-details-bin", b"\xff\xff\xff")]
    assert grpc_error(grpc.StatusCode.RESOURCE_EXHAUSTED, "x", garbage).__class__ is PermanentError
