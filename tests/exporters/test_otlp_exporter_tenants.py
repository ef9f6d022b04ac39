"""`tenant_header` on the otlp exporter: one request per tenant, the tenant in its header.

Recording backends (OTLP/HTTP with aiohttp, OTLP/gRPC with grpc.aio) decode every request and
keep its headers or metadata; a backend can refuse one tenant (retryably or for good) to show
that only that tenant's part is retried or dropped, and no other tenant's data is sent twice.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from aiohttp import web
from grpc import aio
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)

from metricgate.errors import PartialExportError, PermanentError
from metricgate.exporters.otlp import OtlpExporter, OtlpExporterConfig
from metricgate.model import Batch, MetricKind
from metricgate.pipeline.host import Host
from metricgate.pipeline.queue import ExporterQueue
from metricgate.telemetry.metrics import SelfMetrics
from metricgate.tenants import TenantStamp
from tests.support.batches import number_batch
from tests.support.poll import wait_until

SERVICE = "opentelemetry.proto.collector.metrics.v1.MetricsService"
OK = ExportMetricsServiceResponse().SerializeToString()
TENANTS = ["team-a", "team-b", "team-c"]


@dataclass
class Seen:
    """One request: the tenant header's value and the tenants of its resources."""

    header: str | None
    tenants: set[str]
    points: int


@dataclass
class Backend:
    """Records requests; `refuse(tenant, attempt)` returns a status to answer with (0: accept)."""

    refuse: Callable[[str | None, int], int] = lambda _tenant, _attempt: 0
    seen: list[Seen] = field(default_factory=list)

    def record(self, header: str | None, body: bytes) -> int:
        request = ExportMetricsServiceRequest.FromString(body)
        tenants = set()
        points = 0
        for resource_metrics in request.resource_metrics:
            attributes = {a.key: a.value.string_value for a in resource_metrics.resource.attributes}
            tenants.add(attributes.get("tenant.id", ""))
            for scope in resource_metrics.scope_metrics:
                for metric in scope.metrics:
                    points += len(metric.gauge.data_points) + len(metric.sum.data_points)
        self.seen.append(Seen(header, tenants, points))
        attempt = sum(1 for s in self.seen if s.header == header)
        return self.refuse(header, attempt)


@asynccontextmanager
async def http_backend(backend: Backend) -> AsyncIterator[str]:
    async def handle(request: web.Request) -> web.Response:
        body = await request.read()  # aiohttp undoes the gzip Content-Encoding
        status = backend.record(request.headers.get("X-Scope-OrgID"), body)
        return web.Response(status=status or 200, body=OK if not status else b"no")

    app = web.Application()
    app.router.add_post("/v1/metrics", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def grpc_backend(backend: Backend) -> AsyncIterator[str]:
    async def export(request: bytes, context: aio.ServicerContext[bytes, bytes]) -> bytes:
        metadata = dict(context.invocation_metadata() or ())
        header = metadata.get("x-scope-orgid")
        status = backend.record(str(header) if header is not None else None, request)
        if status == 503:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "busy")
        if status:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "no")
        return OK

    server = aio.server()
    handler = grpc.unary_unary_rpc_method_handler(export)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE, {"Export": handler}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(0)


@asynccontextmanager
async def backend_for(protocol: str, backend: Backend) -> AsyncIterator[str]:
    serve = grpc_backend if protocol == "grpc" else http_backend
    async with serve(backend) as endpoint:
        yield endpoint


def exporter(endpoint: str, protocol: str, **extra: Any) -> OtlpExporter:
    config = OtlpExporterConfig.model_validate(
        {
            "endpoint": endpoint,
            "protocol": protocol,
            "tls": {"insecure": True},
            "tenant_header": "X-Scope-OrgID",
            **extra,
        }
    )
    return OtlpExporter("otlp", config)


def mixed(points: int = 4) -> Batch:
    """One batch holding every tenant's data (as after a batch processor)."""
    groups = []
    for tenant in TENANTS:
        batch = number_batch(
            {f"s{i}": 1.0 for i in range(points)}, name=f"m_{tenant}", kind=MetricKind.GAUGE
        )
        groups += TenantStamp(tenant).apply(batch)[0].metrics
    return Batch(groups)


@pytest.mark.parametrize("protocol", ["grpc", "http"])
async def test_each_tenant_goes_in_its_own_request_with_its_header(protocol: str) -> None:
    backend = Backend()
    async with backend_for(protocol, backend) as endpoint:
        otlp = exporter(endpoint, protocol)
        await otlp.start(Host(SelfMetrics()))
        try:
            assert await otlp.export(mixed()) is None
            await otlp.export(TenantStamp("team-a").apply(mixed())[0])  # re-stamped: one tenant
        finally:
            await otlp.shutdown()
    assert len(backend.seen) == 4
    for seen in backend.seen:
        assert seen.tenants == {seen.header}
    assert sorted(s.header or "" for s in backend.seen[:3]) == TENANTS
    assert backend.seen[3].points == 12


@pytest.mark.parametrize("protocol", ["grpc", "http"])
async def test_one_tenants_retryable_failure_retries_only_its_part(protocol: str) -> None:
    backend = Backend(
        refuse=lambda tenant, attempt: 503 if tenant == "team-b" and attempt < 3 else 0
    )
    async with backend_for(protocol, backend) as endpoint:
        otlp = exporter(endpoint, protocol)
        await otlp.start(Host(SelfMetrics()))
        try:
            with pytest.raises(PartialExportError) as partial:
                await otlp.export(mixed())
        finally:
            await otlp.shutdown()
        assert partial.value.delivered == 8 and partial.value.refused == 0
        assert partial.value.remaining.point_count() == 4

        # Behind the sending core: the remainder is retried alone until it goes through.
        backend.seen.clear()
        host = Host(SelfMetrics())
        otlp = exporter(endpoint, protocol)
        retry = otlp.config.retry_on_failure.model_copy(
            update={"initial_interval": 0.01, "max_interval": 0.02}
        )
        queue = ExporterQueue(otlp, None, retry)
        await queue.start(host)
        try:
            queue.enqueue(mixed())
            registry = host.telemetry.registry
            await wait_until(
                lambda: (
                    registry.get_sample_value(
                        "metricgate_exporter_sent_points_total", {"exporter": "otlp"}
                    )
                    == 12
                )
            )
        finally:
            await queue.shutdown(time.monotonic() + 2)
    per_tenant = {t: sum(s.header == t for s in backend.seen) for t in TENANTS}
    assert per_tenant == {"team-a": 1, "team-b": 3, "team-c": 1}


@pytest.mark.parametrize("protocol", ["grpc", "http"])
async def test_one_tenants_refusal_drops_only_its_part(protocol: str) -> None:
    backend = Backend(refuse=lambda tenant, _attempt: 400 if tenant == "team-c" else 0)
    async with backend_for(protocol, backend) as endpoint:
        otlp = exporter(endpoint, protocol)
        await otlp.start(Host(SelfMetrics()))
        try:
            with pytest.raises(PermanentError) as refusal:
                await otlp.export(mixed())
        finally:
            await otlp.shutdown()
    assert (refusal.value.refused, refusal.value.delivered) == (4, 8)
    assert "team-c" in str(refusal.value)


async def test_without_a_tenant_no_header_or_the_default() -> None:
    plain = number_batch({"a": 1.0}, kind=MetricKind.GAUGE)
    for extra, expected in (({}, None), ({"tenant_header": {"default_tenant": "anon"}}, "anon")):
        backend = Backend()
        async with http_backend(backend) as endpoint:
            otlp = exporter(endpoint, "http", **extra)
            await otlp.start(Host(SelfMetrics()))
            try:
                await otlp.export(plain)
            finally:
                await otlp.shutdown()
        assert [s.header for s in backend.seen] == [expected]


def test_a_fixed_header_and_tenant_header_cannot_both_set_it() -> None:
    with pytest.raises(ValueError, match=r"headers\.X-Scope-OrgID and tenant_header both set"):
        OtlpExporterConfig.model_validate(
            {
                "endpoint": "http://x:4318",
                "headers": {"X-Scope-OrgID": "a"},
                "tenant_header": "x-scope-orgid",
            }
        )
