"""`exporters.otlp` config: endpoints, URLs, TLS checks; headers and compression on the wire."""

from __future__ import annotations

import gzip
from typing import Any

import pytest
from aiohttp import web
from pydantic import ValidationError

from metricgate.exporters.otlp import OtlpExporter, OtlpExporterConfig
from metricgate.pipeline.host import Host
from metricgate.telemetry.metrics import SelfMetrics
from tests.support.otlp_batches import every_kind_batch


def _config(**values: Any) -> OtlpExporterConfig:
    return OtlpExporterConfig.model_validate(values)


@pytest.mark.parametrize(
    ("endpoint", "insecure", "url"),
    [
        ("http://c:4318", False, "http://c:4318/v1/metrics"),
        ("https://c:4318/", False, "https://c:4318/v1/metrics"),
        ("https://c/otlp/v1/metrics", False, "https://c/otlp/v1/metrics"),
        ("c:4318", False, "https://c:4318/v1/metrics"),
        ("c:4318", True, "http://c:4318/v1/metrics"),
    ],
)
def test_http_url(endpoint: str, insecure: bool, url: str) -> None:
    config = _config(endpoint=endpoint, protocol="http", tls={"insecure": insecure})
    assert config.url == url


def test_grpc_target_and_security() -> None:
    assert _config(endpoint="c:4317").grpc_target == "c:4317"
    assert _config(endpoint="c:4317").secure
    assert not _config(endpoint="http://c:4317").secure
    assert _config(endpoint="https://[::1]:4317").grpc_target == "[::1]:4317"


def test_defaults() -> None:
    config = _config(endpoint="c:4317")
    assert (config.protocol, config.compression, config.timeout) == ("grpc", "gzip", 10.0)
    assert config.sending_queue.queue_size == 1000
    assert config.retry_on_failure.initial_interval == 5.0


@pytest.mark.parametrize(
    "values",
    [
        {"endpoint": "no-port"},
        {"endpoint": "ftp://c:1"},
        {"endpoint": "c:4317", "tls": {"insecure_skip_verify": True}},
        {"endpoint": "https://c:4317/path"},
        {"endpoint": "c:4317", "tls": {"cert_file": "a.pem"}},
        {"endpoint": "c:4317", "compression": "zstd"},
        {"endpoint": "c:4317", "unknown": 1},
    ],
)
def test_invalid(values: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        _config(**values)


async def test_headers_and_gzip_reach_the_backend() -> None:
    seen: list[tuple[dict[str, str], bytes]] = []

    async def handle(request: web.Request) -> web.Response:
        raw = await request.read()
        seen.append((dict(request.headers), raw))
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/custom/path", handle)
    runner = web.AppRunner(app, auto_decompress=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    config = _config(
        endpoint=f"http://127.0.0.1:{port}/custom/path",
        protocol="http",
        headers={"X-Tenant": "acme"},
    )
    exporter = OtlpExporter("otlp", config)
    await exporter.start(Host(SelfMetrics()))
    try:
        await exporter.export(every_kind_batch())
    finally:
        await exporter.shutdown()
        await runner.cleanup()
    ((headers, body),) = seen
    assert headers["X-Tenant"] == "acme"
    assert headers["Content-Encoding"] == "gzip"
    assert headers["Content-Type"] == "application/x-protobuf"
    assert gzip.decompress(body)
