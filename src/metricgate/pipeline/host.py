"""What a component can reach while it runs: telemetry, admission control, the telemetry server
(its routes, and the operator console's panels), the security layer and the pipelines a receiver
feeds."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from aiohttp import web

from metricgate.config.tenants import TenantsConfig
from metricgate.pipeline.component import Consumer
from metricgate.pipeline.inflight import InFlightBytes
from metricgate.pipeline.memory import MemoryGuard
from metricgate.telemetry.console import Console, ConsolePanel
from metricgate.telemetry.metrics import SelfMetrics

if TYPE_CHECKING:
    from metricgate.access import GatewayAccess
    from metricgate.pipeline.exchange import Exchange
    from metricgate.pipeline.queue import ExporterQueue

RouteHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]
T = TypeVar("T")


class Host:
    """Handed to `Component.start`; one per running gateway."""

    def __init__(
        self,
        telemetry: SelfMetrics,
        app: web.Application | None = None,
        tenants: TenantsConfig | None = None,
    ) -> None:
        self.telemetry = telemetry
        self.memory = MemoryGuard()
        """Receivers call `host.memory.check()` before reading a request body."""
        self.inflight = InFlightBytes()
        """Request bytes all receivers hold at once (`service.max_inflight_request_bytes`)."""
        self.access: GatewayAccess | None = None
        """The gateway's authenticators and tenants; listeners with `auth` need it (the service
        always sets it)."""
        self.pipelines: dict[str, dict[str, Consumer]] = {}
        """Per receiver id, the first consumer of each pipeline it feeds, by pipeline id (for
        tenants that may enter only some of them)."""
        self._app = app
        self.tenants = tenants
        """The `tenants:` section (per-tenant limits such as `max_series`); None without one."""
        self.exporters: dict[str, ExporterQueue] = {}
        """Exporter queues by id, for processors that hand data to exporters (routing)."""
        self._shared: dict[Callable[[Host], Any], Any] = {}
        self.exchange: Exchange | None = None
        """The other workers of a `--workers N` set (None when this process runs alone): what
        shows one view of the whole set asks them for their part."""

    def shared(self, kind: Callable[[Host], T]) -> T:
        """The gateway's one `kind(host)`, made on first call: state every component of a type
        shares, such as the list behind a debug page that shows them all."""
        if kind not in self._shared:
            self._shared[kind] = kind(self)
        return cast(T, self._shared[kind])

    def add_route(self, method: str, path: str, handler: RouteHandler) -> None:
        """Serve a component's debug or status page on the telemetry address (admin-only when
        the telemetry server has `auth`)."""
        if self._app is not None and not self._app.frozen:
            self._app.router.add_route(method, path, handler)

    def add_console_panel(self, name: str, panel: ConsolePanel) -> None:
        """Show a component's state in the operator console, at `/api/console/<name>`; a panel
        registered again under the same name replaces the earlier one (no-op without a telemetry
        server)."""
        console = Console.of(self._app) if self._app is not None else None
        if console is not None:
            console.add_panel(name, panel)
