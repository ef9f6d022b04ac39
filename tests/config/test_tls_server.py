"""Server TLS: config checks, real TLS clients against aiohttp and grpc.aio servers, rotation."""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from aiohttp import web
from cryptography import x509
from pydantic import ValidationError

from metricgate.config.tls_server import ServerCertificates, ServerTls
from metricgate.errors import ConfigError
from tests.support.poll import wait_until
from tests.support.x509 import CertificateAuthority, Issued


def _replace(path: str, data: bytes) -> None:
    """Write like a rotation tool does: a new file renamed over the old one."""
    tmp = f"{path}.tmp"
    Path(tmp).write_bytes(data)
    os.replace(tmp, path)


def _client(
    ca: CertificateAuthority,
    cert: Issued | None = None,
    tmp: Path | None = None,
    max_version: ssl.TLSVersion | None = None,
) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=ca.cert_pem.decode())
    if cert is not None and tmp is not None:
        context.load_cert_chain(*cert.write(tmp, f"client-{cert.serial}"))
    if max_version is not None:
        context.maximum_version = max_version
    return context


@asynccontextmanager
async def https_server(certificates: ServerCertificates) -> AsyncIterator[int]:
    """An aiohttp server answering `/who` with the client certificate's CN (or `-`)."""

    async def who(request: web.Request) -> web.Response:
        ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
        der = ssl_object.getpeercert(binary_form=True) if ssl_object else None
        if not der:
            return web.Response(text="-")
        cert = x509.load_der_x509_certificate(der)
        return web.Response(text=str(cert.subject.rfc4514_string()))

    app = web.Application()
    app.router.add_get("/who", who)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=certificates.ssl_context())
    await site.start()
    try:
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()


async def served_serial(port: int, client: ssl.SSLContext) -> int:
    """The serial number of the certificate a real TLS handshake gets from the server."""
    _reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=client, server_hostname="localhost"
    )
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    writer.close()
    await writer.wait_closed()
    return int(x509.load_der_x509_certificate(der).serial_number)


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Any]:
    ca = CertificateAuthority()
    server = ca.issue("server", dns=["localhost"], ips=["127.0.0.1"])
    cert_file, key_file = server.write(tmp_path, "server")
    return {"ca": ca, "server": server, "cert_file": cert_file, "key_file": key_file}


def test_config_needs_cert_and_key() -> None:
    with pytest.raises(ValidationError, match="cert_file"):
        ServerTls.model_validate({"key_file": "k"})
    with pytest.raises(ValidationError, match=r"min_version 1\.3 is above max_version 1\.2"):
        ServerTls(cert_file="c", key_file="k", min_version="1.3", max_version="1.2")
    with pytest.raises(ValidationError, match="unknown or insecure cipher suite 'TLS_RSA_RC4'"):
        ServerTls(cert_file="c", key_file="k", cipher_suites=["TLS_RSA_RC4"])
    with pytest.raises(ValidationError, match=r"only TLS 1\.3 suites"):
        ServerTls(cert_file="c", key_file="k", cipher_suites=["TLS_AES_128_GCM_SHA256"])
    assert ServerTls(cert_file="c", key_file="k", reload_interval="1m").reload_interval == 60.0


def test_grpc_unsupported_names_the_keys() -> None:
    assert ServerTls(cert_file="c", key_file="k").grpc_unsupported() == []
    config = ServerTls(
        cert_file="c",
        key_file="k",
        min_version="1.3",
        cipher_suites=["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"],
    )
    assert config.grpc_unsupported() == ["min_version", "cipher_suites"]


def test_unreadable_or_mismatched_files_are_config_errors(
    pki: dict[str, Any], tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=r"receivers.otlp.protocols.http.tls: cannot load .*nope"):
        ServerCertificates(
            ServerTls(cert_file=str(tmp_path / "nope"), key_file=pki["key_file"]),
            "receivers.otlp.protocols.http.tls",
        )
    other_key = pki["ca"].issue("other").write(tmp_path, "other")[1]
    with pytest.raises(ConfigError, match="tls: cannot load the certificate"):
        ServerCertificates(ServerTls(cert_file=pki["cert_file"], key_file=other_key))


async def test_https_serves_the_certificate(pki: dict[str, Any]) -> None:
    certificates = ServerCertificates(
        ServerTls(cert_file=pki["cert_file"], key_file=pki["key_file"])
    )
    async with https_server(certificates) as port:
        assert await served_serial(port, _client(pki["ca"])) == pki["server"].serial
        connector = aiohttp.TCPConnector(ssl=_client(pki["ca"]))
        async with (
            aiohttp.ClientSession(connector=connector) as session,
            session.get(f"https://localhost:{port}/who") as response,
        ):
            assert response.status == 200
            assert await response.text() == "-"
        # a client that does not trust the CA is refused
        with pytest.raises(ssl.SSLCertVerificationError):
            await served_serial(port, _client(CertificateAuthority("stranger")))


async def test_rotation_without_restart(pki: dict[str, Any], tmp_path: Path) -> None:
    config = ServerTls(cert_file=pki["cert_file"], key_file=pki["key_file"], reload_interval=0.01)
    certificates = ServerCertificates(config)
    client = _client(pki["ca"])
    async with https_server(certificates) as port:
        assert await served_serial(port, client) == pki["server"].serial

        # a half-written certificate is refused; the old one keeps serving
        _replace(pki["cert_file"], pki["server"].cert_pem[:100])
        await wait_until(
            lambda: certificates.reload_failures >= 1, poke=lambda: served_serial(port, client)
        )
        assert await served_serial(port, client) == pki["server"].serial

        rotated = pki["ca"].issue("server", dns=["localhost"], ips=["127.0.0.1"])
        _replace(pki["key_file"], rotated.key_pem)
        _replace(pki["cert_file"], rotated.cert_pem)
        serials: list[int] = []

        async def handshake() -> None:
            serials.append(await served_serial(port, client))

        await wait_until(lambda: serials[-1:] == [rotated.serial], poke=handshake)
        assert certificates.generation >= 1


async def test_mutual_tls_and_client_ca_rotation(pki: dict[str, Any], tmp_path: Path) -> None:
    ca_file = pki["ca"].write(tmp_path, "clients-ca")
    config = ServerTls(
        cert_file=pki["cert_file"],
        key_file=pki["key_file"],
        client_ca_file=ca_file,
        reload_interval=0.01,
    )
    certificates = ServerCertificates(config)
    alice = pki["ca"].issue("alice")
    async with https_server(certificates) as port:
        url = f"https://localhost:{port}/who"

        async def who(context: ssl.SSLContext) -> str:
            connector = aiohttp.TCPConnector(ssl=context, force_close=True)
            async with (
                aiohttp.ClientSession(connector=connector) as session,
                session.get(url) as response,
            ):
                return await response.text()

        assert await who(_client(pki["ca"], alice, tmp_path)) == "CN=alice"
        with pytest.raises(aiohttp.ClientError):
            await who(_client(pki["ca"]))  # no client certificate
        stranger = CertificateAuthority("stranger").issue("mallory")
        with pytest.raises(aiohttp.ClientError):
            await who(_client(pki["ca"], stranger, tmp_path))

        # the client CA is rotated: alice's certificate is no longer accepted, bob's is
        new_ca = CertificateAuthority("clients-2")
        _replace(ca_file, new_ca.cert_pem)
        bob = new_ca.issue("bob")
        results: list[str] = []

        async def attempt() -> None:
            try:
                results.append(await who(_client(pki["ca"], bob, tmp_path)))
            except aiohttp.ClientError:
                results.append("refused")

        await wait_until(lambda: results[-1:] == ["CN=bob"], poke=attempt)
        with pytest.raises(aiohttp.ClientError):
            await who(_client(pki["ca"], alice, tmp_path))


async def test_min_version_and_cipher_suites(pki: dict[str, Any]) -> None:
    only13 = ServerCertificates(
        ServerTls(cert_file=pki["cert_file"], key_file=pki["key_file"], min_version="1.3")
    )
    async with https_server(only13) as port:
        with pytest.raises((ssl.SSLError, ConnectionResetError)):  # alert or reset
            await served_serial(port, _client(pki["ca"], max_version=ssl.TLSVersion.TLSv1_2))
        assert await served_serial(port, _client(pki["ca"])) == pki["server"].serial

    suite = ServerCertificates(
        ServerTls(
            cert_file=pki["cert_file"],
            key_file=pki["key_file"],
            max_version="1.2",
            cipher_suites=["TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"],
        )
    )
    async with https_server(suite) as port:
        _, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=_client(pki["ca"]), server_hostname="localhost"
        )
        name, version, _ = writer.get_extra_info("cipher")
        writer.close()
        assert (name, version) == ("ECDHE-ECDSA-CHACHA20-POLY1305", "TLSv1.2")


# --- gRPC ---------------------------------------------------------------------------------------


def _identity(data: bytes) -> bytes:
    return data


@asynccontextmanager
async def grpc_server(certificates: ServerCertificates) -> AsyncIterator[int]:
    """A grpc.aio server whose `/test.Who/Ask` answers with the client certificate's CN."""

    async def ask(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        names = context.auth_context().get("x509_common_name", [b"-"])
        return bytes(names[0])

    handler = grpc.method_handlers_generic_handler(
        "test.Who",
        {"Ask": grpc.unary_unary_rpc_method_handler(ask, _identity, _identity)},
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    port = server.add_secure_port("127.0.0.1:0", certificates.grpc_credentials())
    await server.start()
    try:
        yield port
    finally:
        await server.stop(None)


async def _grpc_ask(port: int, ca: bytes, client: Issued | None = None) -> bytes:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=ca,
        private_key=client.key_pem if client else None,
        certificate_chain=client.cert_pem if client else None,
    )
    async with grpc.aio.secure_channel(
        f"127.0.0.1:{port}", credentials, options=(("grpc.ssl_target_name_override", "localhost"),)
    ) as channel:
        call = channel.unary_unary("/test.Who/Ask", _identity, _identity)
        return bytes(await call(b"", timeout=5))


async def test_grpc_rotation_and_mutual_tls(pki: dict[str, Any], tmp_path: Path) -> None:
    ca_file = pki["ca"].write(tmp_path, "clients-ca")
    config = ServerTls(
        cert_file=pki["cert_file"],
        key_file=pki["key_file"],
        client_ca_file=ca_file,
        reload_interval=0.01,
    )
    certificates = ServerCertificates(config)
    alice = pki["ca"].issue("alice")
    async with grpc_server(certificates) as port:
        assert await _grpc_ask(port, pki["ca"].cert_pem, alice) == b"alice"
        with pytest.raises(grpc.aio.AioRpcError):
            await _grpc_ask(port, pki["ca"].cert_pem)  # no client certificate

        # rotate the server certificate to one from another CA: new channels see it
        other = CertificateAuthority("server-ca-2")
        rotated = other.issue("server", dns=["localhost"], ips=["127.0.0.1"])
        _replace(pki["key_file"], rotated.key_pem)
        _replace(pki["cert_file"], rotated.cert_pem)
        answers: list[bytes] = []

        async def attempt() -> None:
            try:
                answers.append(await _grpc_ask(port, other.cert_pem, alice))
            except grpc.aio.AioRpcError:
                answers.append(b"refused")

        await wait_until(lambda: answers[-1:] == [b"alice"], poke=attempt)
        with pytest.raises(grpc.aio.AioRpcError):
            await _grpc_ask(port, pki["ca"].cert_pem, alice)
