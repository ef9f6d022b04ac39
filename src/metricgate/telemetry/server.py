"""The telemetry HTTP server: own metrics, health and readiness, and component debug pages.

`/metrics` serves `SelfMetrics` (text format, gzip when asked); `/healthz` answers 200 while the
process runs; `/readyz` answers 200 once every component started and 503 while starting or
draining. Components add their own pages (e.g. the cardinality limiter's top offenders) through
`Host.add_route` before the server starts. The server listens through `HttpListener`, with the
header and idle timeouts and the connection limit of `service.telemetry.metrics`. The operator
console (`/`, `/api/console/...`, `/-/reload`) is installed on the same application.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from metricgate.telemetry.console import Console
from metricgate.telemetry.metrics import SelfMetrics

if TYPE_CHECKING:
    from metricgate.listeners.settings import HttpListenerSettings

log = logging.getLogger(__name__)


class TelemetryServer:
    """Serves own metrics and health endpoints on one address."""

    def __init__(
        self, address: str, metrics: SelfMetrics, settings: HttpListenerSettings | None = None
    ) -> None:
        self.address = address
        self.metrics = metrics
        self.ready = False
        self.app = web.Application()
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
        )
        self.port: int | None = None

    async def start(self) -> None:
        self.port = await self._listener.start(self.app)
        log.info("telemetry listening", extra={"address": self.address, "port": self.port})

    async def shutdown(self) -> None:
        await self._listener.stop()

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
