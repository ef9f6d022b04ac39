"""The telemetry HTTP server: own metrics, health and readiness, and component debug pages.

`/metrics` serves `SelfMetrics` (text format, gzip when asked); `/healthz` answers 200 while the
process runs; `/readyz` answers 200 once every component started and 503 while starting or
draining (under `--workers N`: once every worker is ready). Components add their own pages (e.g.
the cardinality limiter's top offenders) through `Host.add_route` before the server starts. The
server listens through `HttpListener`, with the header and idle timeouts, the connection limit
and the `tls` of `service.telemetry.metrics`. The operator console (`/`, `/api/console/...`,
`/-/reload`) is installed on the same application.

With `auth` on `service.telemetry.metrics`, the service sets `admin_gate`, and every path but
`/healthz` and `/readyz` (orchestrators probe without credentials) passes it first: own metrics
name every tenant, and the debug, cardinality and console pages and `/-/reload` are admin
surfaces. The gate is checked in one middleware, so routes added later are covered too.

Under `--workers N` every worker serves the address; `/metrics` answers for the whole set: each
series summed over the workers (`wire.exposition.merge.sum_pages`), so dashboards and alerts read
as with one process, or with `?workers=each` every worker's series with a `worker` label.

Invariant: with an `admin_gate` set, no route but the two probes answers without it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Final

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from metricgate.errors import UnavailableError
from metricgate.telemetry.console import AdminGate, Console
from metricgate.telemetry.metrics import SelfMetrics
from metricgate.wire.exposition.merge import labelled, merge_pages, sum_pages

if TYPE_CHECKING:
    from metricgate.config.listeners import HttpListenerSettings

log = logging.getLogger(__name__)

PUBLIC_PATHS: Final = frozenset(("/healthz", "/readyz"))
TELEMETRY_TOPIC: Final = "telemetry"
READY_TOPIC: Final = "ready"

WorkerPages = tuple[int, Callable[[str, bytes], Awaitable[list[bytes]]]]
"""This worker's index, and `ask_peers` of its `Exchange`."""


def set_unavailable(exc: UnavailableError) -> web.Response:
    """The answer of a view of the whole `--workers N` set while a worker cannot give its part:
    503, try again in a second (a part is never shown as the whole)."""
    return web.Response(status=503, text=f"{exc}\n", headers={"Retry-After": "1"})


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
        self.workers: WorkerPages | None = None
        """Under `--workers N`: this worker's index and how to ask the others for their pages
        (set by the service, which also answers `TELEMETRY_TOPIC` for them)."""

    def own_page(self) -> bytes:
        """This worker's own metrics alone."""
        return generate_latest(self.metrics.registry)

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
        if self.workers is not None:
            try:
                body = await self._every_worker(self.workers, body, request.query.get("workers"))
            except UnavailableError as exc:
                return set_unavailable(exc)
        response = web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            response.enable_compression()
        return response

    @staticmethod
    async def _every_worker(workers: WorkerPages, own: bytes, view: str | None) -> bytes:
        """Under `--workers N`: every worker's own metrics, summed per series, or (`?workers=
        each`) side by side with a `worker` label."""
        index, ask = workers
        pages = [page.decode() for page in await ask(TELEMETRY_TOPIC, b"")]
        pages.insert(index, own.decode())
        if view == "each":
            return merge_pages(
                [labelled(p, "worker", str(i)) for i, p in enumerate(pages)]
            ).encode()
        return sum_pages(pages).encode()

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _readyz(self, request: web.Request) -> web.Response:
        if self.ready and self.workers is not None:
            try:  # the set is ready when every worker is
                answers = await self.workers[1](READY_TOPIC, b"")
            except UnavailableError as exc:
                return web.Response(status=503, text=f"not ready: {exc}\n")
            if not all(answer == b"1" for answer in answers):
                return web.Response(status=503, text="not ready: a worker is starting\n")
        if self.ready:
            return web.Response(text="ready\n")
        return web.Response(status=503, text="not ready\n")
