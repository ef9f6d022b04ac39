"""The receiver skeleton on a running otlp receiver: the admission seam (HTTP and gRPC alike, with
headers and peer, before the body), the body read timeout, the process-wide in-flight budget."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
import pytest
from google.rpc import status_pb2

from metricgate.config import load_config_text
from metricgate.errors import PermissionDenied, Unauthenticated
from metricgate.pipeline.service import Service
from metricgate.receivers.otlp import OtlpReceiver
from metricgate.receiving.core import RequestInfo
from tests.receivers.otlp_data import gauge, number, request, sum_metric
from tests.support.capture import CaptureExporter, registry_with_capture
from tests.support.poll import wait_until

METHOD = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
GOOD_BODY = request(
    sum_metric("requests", number(1.0), number(2.0, {"k": "v"}))
).SerializeToString()
CONFIG = """
receivers:
  otlp:
    protocols:
      grpc: {endpoint: "127.0.0.1:0"}
      http: {endpoint: "127.0.0.1:0", read_timeout: 300ms}
exporters:
  capture: {}
service:
  pipelines:
    metrics: {receivers: [otlp], exporters: [capture]}
  telemetry:
    metrics: {address: ""}
  max_inflight_request_bytes: 1MiB
"""


@asynccontextmanager
async def running() -> AsyncIterator[tuple[Service, OtlpReceiver]]:
    service = Service(load_config_text(CONFIG, registry_with_capture(), {}))
    await service.start()
    try:
        receiver = service.receivers["otlp"]
        assert isinstance(receiver, OtlpReceiver)
        yield service, receiver
    finally:
        await service.shutdown(time.monotonic() + 5)


async def raw_http(
    port: int | None, data: bytes
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    assert port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    return reader, writer


def headers(length: int, **extra: str) -> bytes:
    lines = [
        "POST /v1/metrics HTTP/1.1",
        "Host: gateway",
        "Content-Type: application/x-protobuf",
        f"Content-Length: {length}",
        *(f"{name.replace('_', '-')}: {value}" for name, value in extra.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def export_grpc(port: int | None, metadata: tuple[tuple[str, str], ...] = ()) -> bytes:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(METHOD, request_serializer=None, response_deserializer=None)
        answer: bytes = await call(GOOD_BODY, timeout=10, metadata=metadata)
        return answer


async def test_admission_sees_headers_and_peer_before_the_body_on_both_transports() -> None:
    seen: list[tuple[str, str, str | None]] = []

    async def tenants(info: RequestInfo) -> None:
        tenant = info.headers.get("x-tenant")
        seen.append((info.transport, info.peer, tenant))
        assert info.peer_certificate is None  # no TLS here
        if tenant is None:
            raise Unauthenticated("no credentials", challenge='Bearer realm="metricgate"')
        if tenant == "blocked":
            raise PermissionDenied(f"tenant {tenant} may not write")

    async with running() as (service, receiver):
        assert receiver.core is not None
        receiver.core.checks = (*receiver.core.checks, tenants)
        # HTTP: the refusal comes although the body never does
        reader, writer = await raw_http(receiver.http_port, headers(1000, x_tenant="blocked"))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
        body = await reader.readexactly(length)
        writer.close()
        assert head.startswith(b"HTTP/1.1 403")
        assert status_pb2.Status.FromString(body) == status_pb2.Status(
            code=7, message="tenant blocked may not write"
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await export_grpc(receiver.grpc_port, (("x-tenant", "blocked"),))
        assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED
        assert caught.value.details() == "tenant blocked may not write"
        # no credentials: 401 with the challenge, UNAUTHENTICATED
        reader, writer = await raw_http(receiver.http_port, headers(len(GOOD_BODY)) + GOOD_BODY)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        writer.close()
        assert head.startswith(b"HTTP/1.1 401")
        assert b'WWW-Authenticate: Bearer realm="metricgate"' in head
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await export_grpc(receiver.grpc_port)
        assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
        # admitted on both transports, the data flows
        reader, writer = await raw_http(
            receiver.http_port, headers(len(GOOD_BODY), x_tenant="a") + GOOD_BODY
        )
        assert (await reader.readuntil(b"\r\n")).startswith(b"HTTP/1.1 200")
        writer.close()
        assert await export_grpc(receiver.grpc_port, (("x-tenant", "b"),)) == b""
        capture = CaptureExporter.instances["capture"]
        await wait_until(lambda: sum(b.point_count() for b in capture.batches) == 4)
    assert [(t, tenant) for t, _, tenant in seen] == [
        ("http", "blocked"),
        ("grpc", "blocked"),
        ("http", None),
        ("grpc", None),
        ("http", "a"),
        ("grpc", "b"),
    ]
    assert all(peer.count("127.0.0.1") == 1 for _, peer, _ in seen)
    requests = service.telemetry.registry.get_sample_value
    for transport, code in (
        ("http", "403"),
        ("grpc", "PERMISSION_DENIED"),
        ("http", "401"),
        ("grpc", "UNAUTHENTICATED"),
    ):
        labels = {"receiver": "otlp", "transport": transport, "code": code}
        assert requests("metricgate_receiver_requests_total", labels) == 1


async def test_a_body_that_stops_arriving_gets_408_and_a_close() -> None:
    async with running() as (service, receiver):
        reader, writer = await raw_http(receiver.http_port, headers(100) + b"0123456789")
        answer = await asyncio.wait_for(reader.read(), 10)  # read to the server's close
        writer.close()
        assert answer.startswith(b"HTTP/1.1 408")
        assert b"read_timeout" in answer
        assert service.host.inflight.used == 0


async def test_requests_over_the_inflight_budget_get_503_until_bytes_are_given_back() -> None:
    big = request(gauge("g", *(number(float(i), {"i": str(i)}) for i in range(20_000))))
    body = big.SerializeToString()
    assert 800_000 < len(body) < 1 << 20
    async with running() as (service, receiver):
        inflight = service.host.inflight
        # the first request holds most of the budget while its body trickles in
        first = await raw_http(receiver.http_port, headers(len(body)) + body[:700_000])
        await wait_until(lambda: inflight.used >= 700_000)
        second = await raw_http(receiver.http_port, headers(len(body)) + body)
        answer = await asyncio.wait_for(second[0].readuntil(b"\r\n\r\n"), 10)
        second[1].close()
        assert answer.startswith(b"HTTP/1.1 503") and b"Retry-After: 1" in answer
        first[1].write(body[700_000:])
        assert (await first[0].readuntil(b"\r\n")).startswith(b"HTTP/1.1 200")
        first[1].close()
        await wait_until(lambda: inflight.used == 0)
        assert await export_grpc(receiver.grpc_port) == b""
        labels = {"receiver": "otlp", "transport": "http", "code": "503"}
        assert (
            service.telemetry.registry.get_sample_value(
                "metricgate_receiver_requests_total", labels
            )
            == 1
        )


async def test_grpc_calls_are_charged_to_the_inflight_budget_too() -> None:
    async with running() as (service, receiver):
        inflight = service.host.inflight
        holder = inflight.lease()
        holder.charge(inflight.limit)  # another request holds the whole budget
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await export_grpc(receiver.grpc_port)
        assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
        assert "max_inflight_request_bytes" in (caught.value.details() or "")
        holder.release()
        assert await export_grpc(receiver.grpc_port) == b""
        assert inflight.used == 0
