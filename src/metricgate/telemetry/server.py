"""The telemetry HTTP server: own metrics, health and readiness, and component debug pages.

`/metrics` serves `SelfMetrics` (text format, gzip when asked); `/healthz` answers 200 while the
process runs; `/readyz` answers 200 once every component started and 503 while starting or
draining. Components add their own pages (e.g. the cardinality limiter's top offenders) through
`Host.add_route` before the server starts. The server listens through `HttpListener`, with the
header and idle timeouts, the connection limit and the `tls` of `service.telemetry.metrics`. The
operator console (`/`, `/api/console/...`, `/-/reload`) is installed on the same application.

With `auth` on `service.telemetry.metrics`, the service sets `admin_gate`, and every path but
`/healthz` and `/readyz` (orchestrators probe without credentials) passes it first: own metrics
name every tenant, and the debug, cardinality and console pages and `/-/reload` are admin
surfaces. The gate is checked in one middleware, so routes added later are covered too.

Invariant: with an `admin_gate` set, no route but the two probes answers without it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Final

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from metricgate.telemetry.console import AdminGate, Console
from metricgate.telemetry.metrics import SelfMetrics

if TYPE_CHECKING:
    from metricgate.config.listeners import HttpListenerSettings

log = logging.getLogger(__name__)

PUBLIC_PATHS: Final = frozenset(("/healthz", "/readyz"))


class TelemetryServer:
    """Serves own metrics and health endpoints on one address."""

    def __init__(
        self, address: str, metrics: SelfMetrics, settings: HttpListenerSettings | None = None
    ) -> None:
        self.address = address
        self.metrics = metrics
        self.ready = False
        self.admin_gate: AdminGate | None = None
        """Set when the telemetry server has `auth`: every non-probe path passes it first."""
        self.app = web.Application(middlewares=[self._gate])
        self.app.router.add_get("/metrics", self._metrics)
        self.app.router.add_get("/healthz", self._healthz)
        self.app.router.add_get("/readyz", self._readyz)
        self.console = Console(metrics)
        self.console.install(self.app)
        # Imported here, not at the top: `metricgate.listeners` needs `metricgate.config`, whose
        # loader imports the pipeline, which imports this module (an import cycle otherwise).
        from metricgate.listeners import HttpListener, HttpListenerSettings

        self._listener = HttpListener(
            "telemetry server (service.telemetry.metrics)",
            address,
            settings or HttpListenerSettings(),
            "service.telemetry.metrics",
        )
        self.port: int | None = None

    async def start(self) -> None:
        self.port = await self._listener.start(self.app)
        log.info("telemetry listening", extra={"address": self.address, "port": self.port})

    async def shutdown(self) -> None:
        await self._listener.stop()

    @web.middleware
    async def _gate(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        gate = self.admin_gate
        if gate is not None and request.path not in PUBLIC_PATHS:
            await gate(request)
        return await handler(request)

    async def _metrics(self, request: web.Request) -> web.Response:
        body = generate_latest(self.metrics.registry)
        response = web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            response.enable_compression()
        return response

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _readyz(self, request: web.Request) -> web.Response:
        if self.ready:
            return web.Response(text="ready\n")
        return web.Response(status=503, text="not ready\n")
