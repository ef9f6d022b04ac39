"""The otlp exporter over TLS: a CA file, mutual TLS, and skipping verification (HTTP)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc import aio
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

from metricgate.errors import RetryableError
from metricgate.exporters.otlp import OtlpExporter, OtlpExporterConfig
from metricgate.pipeline.host import Host
from metricgate.telemetry.metrics import SelfMetrics
from tests.support.otlp_batches import every_kind_batch
from tests.support.tls import https_backend

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")
SERVICE = "opentelemetry.proto.collector.metrics.v1.MetricsService"


async def _export(endpoint: str, protocol: str, tls: dict[str, Any]) -> None:
    config = OtlpExporterConfig.model_validate(
        {"endpoint": endpoint, "protocol": protocol, "tls": tls, "timeout": "3s"}
    )
    exporter = OtlpExporter("otlp", config)
    await exporter.start(Host(SelfMetrics()))
    try:
        await exporter.export(every_kind_batch())
    finally:
        await exporter.shutdown()


def _points(bodies: list[bytes]) -> int:
    """The data points in the OTLP requests a backend received."""
    return sum(
        len(getattr(metric, metric.WhichOneof("data")).data_points)
        for body in bodies
        for resource in ExportMetricsServiceRequest.FromString(body).resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    )


async def test_https_with_ca_file_and_client_certificate(certs: dict[str, str]) -> None:
    tls = {
        "ca_file": certs["ca.pem"],
        "cert_file": certs["client.pem"],
        "key_file": certs["client.key"],
    }
    async with https_backend(certs, client_auth=True) as backend:
        await _export(backend.url, "http", tls)
    assert _points(backend.bodies) == every_kind_batch().point_count()


async def test_https_unknown_ca_fails_unless_verification_is_skipped(certs: dict[str, str]) -> None:
    async with https_backend(certs, client_auth=False) as backend:
        with pytest.raises(RetryableError):
            await _export(backend.url, "http", {})
        assert backend.bodies == []
        await _export(backend.url, "http", {"insecure_skip_verify": True})
    assert _points(backend.bodies) == every_kind_batch().point_count()


async def test_grpc_with_ca_file_and_client_certificate(certs: dict[str, str]) -> None:
    received: list[bytes] = []

    async def export(request: bytes, context: aio.ServicerContext[bytes, bytes]) -> bytes:
        received.append(request)
        return b""

    def read(name: str) -> bytes:
        return Path(certs[name]).read_bytes()

    server = aio.server()
    handler = grpc.unary_unary_rpc_method_handler(export)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE, {"Export": handler}),)
    )
    credentials = grpc.ssl_server_credentials(
        [(read("server.key"), read("server.pem"))], read("ca.pem"), True
    )
    port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    try:
        tls = {
            "ca_file": certs["ca.pem"],
            "cert_file": certs["client.pem"],
            "key_file": certs["client.key"],
        }
        await _export(f"127.0.0.1:{port}", "grpc", tls)
    finally:
        await server.stop(0)
    assert _points(received) == every_kind_batch().point_count()
