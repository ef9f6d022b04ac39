"""TLS for exporter tests: a throwaway CA with server and client certificates (openssl), and an
HTTPS backend that accepts every POST and keeps what it received."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web


def certificates(directory: Path) -> dict[str, str]:
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


@dataclass
class HttpsBackend:
    """A running HTTPS backend: its base URL and the bodies it received (gzip already undone)."""

    url: str
    bodies: list[bytes] = field(default_factory=list)


@asynccontextmanager
async def https_backend(certs: dict[str, str], client_auth: bool) -> AsyncIterator[HttpsBackend]:
    """An HTTPS server on a free port answering every POST with 200."""
    backend = HttpsBackend("")

    async def handle(request: web.Request) -> web.Response:
        backend.bodies.append(await request.read())  # aiohttp undoes Content-Encoding: gzip
        return web.Response(status=200)

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certs["server.pem"], certs["server.key"])
    if client_auth:
        context.load_verify_locations(certs["ca.pem"])
        context.verify_mode = ssl.CERT_REQUIRED
    app = web.Application()
    app.router.add_post("/{path:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    backend.url = f"https://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield backend
    finally:
        await runner.cleanup()
