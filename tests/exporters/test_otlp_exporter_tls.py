"""The otlp exporter over TLS: a CA file, mutual TLS, and skipping verification (HTTP)."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest
from aiohttp import web
from grpc import aio

from metricgate.errors import RetryableError
from metricgate.exporters.otlp import OtlpExporter, OtlpExporterConfig
from metricgate.pipeline.host import Host
from metricgate.telemetry.metrics import SelfMetrics
from tests.exporters.test_otlp_exporter_data import every_kind_batch

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")
SERVICE = "opentelemetry.proto.collector.metrics.v1.MetricsService"


def _certificates(directory: Path) -> dict[str, str]:
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate."""

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=test-ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    )
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name in ("server", "client"):
        run(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            f"/CN={name}",
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
        )
        run(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "san.ext",
            "-out",
            f"{name}.pem",
        )
    return {
        name: str(directory / name)
        for name in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key")
    }


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return _certificates(tmp_path_factory.mktemp("certs"))


@asynccontextmanager
async def https_backend(certs: dict[str, str], client_auth: bool) -> AsyncIterator[str]:
    async def handle(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=200)

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certs["server.pem"], certs["server.key"])
    if client_auth:
        context.load_verify_locations(certs["ca.pem"])
        context.verify_mode = ssl.CERT_REQUIRED
    app = web.Application()
    app.router.add_post("/v1/metrics", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    try:
        yield f"https://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


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


async def test_https_with_ca_file_and_client_certificate(certs: dict[str, str]) -> None:
    tls = {
        "ca_file": certs["ca.pem"],
        "cert_file": certs["client.pem"],
        "key_file": certs["client.key"],
    }
    async with https_backend(certs, client_auth=True) as url:
        await _export(url, "http", tls)


async def test_https_unknown_ca_fails_unless_verification_is_skipped(certs: dict[str, str]) -> None:
    async with https_backend(certs, client_auth=False) as url:
        with pytest.raises(RetryableError):
            await _export(url, "http", {})
        await _export(url, "http", {"insecure_skip_verify": True})


async def test_grpc_with_ca_file_and_client_certificate(certs: dict[str, str]) -> None:
    async def export(request: bytes, context: aio.ServicerContext[bytes, bytes]) -> bytes:
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
