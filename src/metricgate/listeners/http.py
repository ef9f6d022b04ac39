"""`HttpListener`: how every metricgate HTTP endpoint binds and serves an aiohttp app.

Used by the HTTP receivers, the `prometheus` exporter's page and the telemetry server, so each
gets the same protections (`connections.py`: header and idle timeouts, a connection limit), the
same TLS (`settings.tls`: the certificate is loaded at start and follows rotations on disk, see
`config.tls_server`) and the same start-up error: `<owner> cannot listen on <endpoint>:
<reason>`, an `OSError` carrying the errno, naming the component that could not start. The
workers of one `--workers N` set bind every port with `SO_REUSEPORT` (`metricgate.role`), and the
kernel spreads new connections among them.

Invariant: `start()` either returns the bound port or raises (`ListenError`, or `ConfigError`
naming `<config_path>.tls` when the certificate cannot be loaded) having released everything it
took; `stop()` is idempotent.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Final

from aiohttp import web

from metricgate import role
from metricgate.config.listeners import HttpListenerSettings
from metricgate.config.tls_server import ServerCertificates
from metricgate.config.types import split_endpoint
from metricgate.listeners.bind import ListenError
from metricgate.listeners.connections import ConnectionGuard

SHUTDOWN_TIMEOUT_S: Final = 5.0
"""How long `stop()` lets requests in progress finish."""
NO_TIMEOUT_S: Final = 10 * 365 * 86400.0


class HttpListener:
    """One component's aiohttp server on one endpoint (see module docstring)."""

    def __init__(
        self, owner: str, endpoint: str, settings: HttpListenerSettings, config_path: str = ""
    ) -> None:
        self.owner = owner
        """Who listens, as users name it in messages: `receiver "otlp" (http)`."""
        self.endpoint = endpoint
        self.settings = settings
        self.config_path = config_path
        """Where the settings sit in the config (`receivers.otlp.protocols.http`), for errors."""
        self.port: int | None = None
        self.guard: ConnectionGuard | None = None
        self.certificates: ServerCertificates | None = None
        """The live TLS material when `settings.tls` is set (once started)."""
        self._runner: web.AppRunner | None = None

    async def start(
        self,
        app: web.Application,
        *,
        auto_decompress: bool = True,
        ssl_context: ssl.SSLContext | None = None,
    ) -> int:
        """Serve `app`; return the bound port (port 0 works). `auto_decompress=False` leaves
        request bodies as sent (receivers decompress with bounds of their own). TLS comes from
        `settings.tls` unless an `ssl_context` is given."""
        tls = self.settings.tls
        if ssl_context is None and tls is not None:
            path = f"{self.config_path}.tls" if self.config_path else "tls"
            self.certificates = ServerCertificates(tls, path)
            ssl_context = self.certificates.ssl_context()
        server: list[web.Server] = []
        guard = ConnectionGuard(self.owner, self.settings, lambda: server[0]())
        # Outermost: a request is busy from its headers on, whatever the app's own middlewares
        # (an authentication check) await.
        app.middlewares.insert(0, guard.middleware)
        runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=SHUTDOWN_TIMEOUT_S,
            auto_decompress=auto_decompress,
            keepalive_timeout=_backup_timeout(self.settings),
        )
        await runner.setup()
        assert runner.server is not None
        server.append(runner.server)
        host, port = split_endpoint(self.endpoint)
        try:
            await _GuardedSite(runner, host, port, guard, ssl_context).start()
        except OSError as exc:
            await runner.cleanup()
            raise ListenError(self.owner, self.endpoint, exc) from exc
        self._runner = runner
        self.guard = guard
        addresses = runner.addresses
        self.port = int(addresses[0][1]) if addresses else port
        return self.port

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        if self.guard is not None:
            self.guard.stop()


def peer_certificate(request: web.BaseRequest) -> bytes | None:
    """The client certificate (DER) of a mutual-TLS request; None without TLS or certificate."""
    transport = request.transport
    tls = transport.get_extra_info("ssl_object") if transport is not None else None
    certificate = tls.getpeercert(binary_form=True) if tls is not None else None
    return certificate if isinstance(certificate, bytes) else None


def _backup_timeout(settings: HttpListenerSettings) -> float:
    """aiohttp's own keep-alive timer (which also closes silent new connections): after the
    guard's deadlines, so it only backs them up; off when either of them is."""
    header, idle = settings.read_header_timeout, settings.idle_timeout
    return max(header, idle) + 2.0 if header > 0 and idle > 0 else NO_TIMEOUT_S


class _GuardedSite(web.BaseSite):
    """A TCP site whose connections go through a `ConnectionGuard`."""

    __slots__ = ("_guard", "_host", "_port")

    def __init__(
        self,
        runner: web.AppRunner,
        host: str,
        port: int,
        guard: ConnectionGuard,
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context)
        self._host = host
        self._port = port
        self._guard = guard

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._guard.protocol,
            self._host,
            self._port,
            ssl=self._ssl_context,
            backlog=self._backlog,
            reuse_port=role.CURRENT.shared or None,
        )
