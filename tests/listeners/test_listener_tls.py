"""`tls` on real listeners: an otlp receiver's HTTP and gRPC endpoints rotate their certificate
without a restart, a certificate that does not load stops the start naming its key path, and
gRPC refuses the TLS keys it cannot honour at validation."""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
from pathlib import Path

import pytest
from cryptography import x509

from metricgate.config import load_config_text
from metricgate.errors import ConfigError
from metricgate.pipeline.service import Service
from tests.support.capture import registry_with_capture
from tests.support.poll import wait_until
from tests.support.x509 import CertificateAuthority, Issued

CONFIG = """
receivers:
  otlp:
    protocols:
      grpc: {{endpoint: "127.0.0.1:0", tls: &tls {tls}}}
      http: {{endpoint: "127.0.0.1:0", tls: *tls}}
exporters:
  capture: {{}}
service:
  pipelines:
    metrics: {{receivers: [otlp], exporters: [capture]}}
  telemetry:
    metrics: {{address: ""}}
"""


def replace(path: str, data: bytes) -> None:
    staged = f"{path}.new"
    Path(staged).write_bytes(data)
    os.replace(staged, path)


async def served_serial(port: int, ca: CertificateAuthority) -> int:
    """The serial of the certificate a TLS handshake with the listener gets (a new connection)."""
    context = ssl.create_default_context(cadata=ca.cert_pem.decode())
    context.set_alpn_protocols(["h2", "http/1.1"])
    _, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=context, server_hostname="localhost"
    )
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    writer.close()
    with contextlib.suppress(ssl.SSLError, ConnectionError):  # gRPC has sent its settings
        await writer.wait_closed()
    return int(x509.load_der_x509_certificate(der).serial_number)


def service(tls: str) -> Service:
    return Service(load_config_text(CONFIG.format(tls=tls), registry_with_capture(), {}))


async def test_both_transports_rotate_their_certificate(tmp_path: Path) -> None:
    ca = CertificateAuthority()
    first: Issued = ca.issue("localhost", dns=["localhost"])
    cert, key = first.write(tmp_path, "server")
    running = service(f'{{cert_file: "{cert}", key_file: "{key}", reload_interval: 10ms}}')
    await running.start()
    try:
        receiver = running.receivers["otlp"]
        ports = [receiver.http_port, receiver.grpc_port]  # type: ignore[attr-defined]
        for port in ports:
            assert await served_serial(port, ca) == first.serial
        rotated = ca.issue("localhost", dns=["localhost"])
        replace(key, rotated.key_pem)
        replace(cert, rotated.cert_pem)
        for port in ports:
            seen: list[int] = []

            async def handshake(port: int = port, seen: list[int] = seen) -> None:
                seen.append(await served_serial(port, ca))

            await wait_until(lambda seen=seen: seen[-1:] == [rotated.serial], handshake)
    finally:
        await running.shutdown()


async def test_a_certificate_that_does_not_load_stops_the_start(tmp_path: Path) -> None:
    running = service(f'{{cert_file: "{tmp_path}/missing.pem", key_file: "{tmp_path}/k.pem"}}')
    with pytest.raises(ConfigError, match=r"receivers\.otlp\.protocols\.grpc\.tls: cannot load"):
        await running.start()


def test_grpc_refuses_tls_keys_it_cannot_honour() -> None:
    with pytest.raises(ConfigError) as refused:
        service('{cert_file: c.pem, key_file: k.pem, min_version: "1.3"}')
    assert any(
        problem.startswith("receivers.otlp.protocols.grpc: ")
        and "tls.min_version: grpcio cannot set min_version on a gRPC server" in problem
        for problem in refused.value.problems
    ), refused.value.problems
