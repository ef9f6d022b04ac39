"""The operator console's HTTP side: the page at `/`, its JSON API and the reload endpoint.

    GET  /                         the page (static/index.html; console.css and console.js beside)
    GET  /api/console/graph        pipelines with points/s per edge, exporter health, last errors
    GET  /api/console/config       the effective config, secrets redacted (`?format=yaml`: YAML)
    GET  /api/console/panels       the panels components registered: name, title, has an action
    GET  /api/console/<panel>      a panel's JSON (`cardinality`, `relabel`), query passed on
    POST /api/console/<panel>      a panel's action (`relabel`: run rules on series), JSON body
    POST /-/reload                 reload the config (`Console.reload`); 501 where nothing set it

`Console.install` adds these routes to the telemetry server's application, so the server module
only registers; the rate sampler and the last-error handler run while that application does
(aiohttp's startup and cleanup signals).

Invariant: every route passes `admin_gate` first (see `access`); nothing is fetched from outside
the gateway: the page loads only its own files (a Content-Security-Policy of `'self'` says so to
the browser) and renders every string from the gateway as text, never as markup.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import TYPE_CHECKING, Any

import yaml
from aiohttp import web

from metricgate.errors import ConfigError, UnavailableError
from metricgate.telemetry.console.access import AdminGate, open_gate
from metricgate.telemetry.console.config_view import effective_config
from metricgate.telemetry.console.graph import (
    GatewayShape,
    QueueFill,
    graph_report,
    merge_graphs,
)
from metricgate.telemetry.console.last_errors import LastErrors
from metricgate.telemetry.console.panels import ConsolePanel
from metricgate.telemetry.console.rates import CounterSource, RateSampler
from metricgate.telemetry.metrics import SelfMetrics

if TYPE_CHECKING:
    from metricgate.config import Config

AskPeers = Callable[[str, bytes], Awaitable[list[bytes]]]
"""(topic, payload) -> every other worker's answer (the exchange's `ask_peers`)."""

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_STATIC = {
    "index.html": "text/html",
    "console.css": "text/css",
    "console.js": "text/javascript",
}
_BUILT_IN = frozenset({"graph", "config", "panels"})
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
RELOAD_UNAVAILABLE = (
    "reload not available: this gateway was not started by `metricgate run`; "
    "restart it to apply a changed config"
)
ReloadHandler = Callable[[], Awaitable[tuple[int, dict[str, Any]]]]
"""Reloads the gateway's config; the HTTP status and JSON body to answer with."""


def counter_sources(metrics: SelfMetrics) -> list[CounterSource]:
    """The counters behind the console's rates (see `graph`)."""
    return [
        CounterSource("receiver_accepted", (metrics.receiver_accepted,), ("receiver",)),
        CounterSource("receiver_refused", (metrics.receiver_refused,), ("receiver",)),
        CounterSource(
            "processor_outgoing", (metrics.processor_outgoing,), ("processor", "pipeline")
        ),
        CounterSource("processor_dropped", (metrics.processor_dropped,), ("processor",)),
        CounterSource("exporter_sent", (metrics.exporter_sent,), ("exporter",)),
        CounterSource("exporter_retries", (metrics.exporter_retries,), ("exporter",)),
        CounterSource(
            "exporter_trouble",
            (
                metrics.exporter_retries,
                metrics.exporter_send_failed,
                metrics.exporter_enqueue_failed,
            ),
            ("exporter",),
        ),
    ]


class Console:
    """The operator console of one gateway: its page, JSON API, panels and reload endpoint.

    The service tells it the configured graph (`show_gateway`); components add panels through
    `Host.add_console_panel`; the telemetry server installs it on its application.
    """

    def __init__(self, metrics: SelfMetrics, interval: float = 1.0, window: float = 10.0) -> None:
        self.sampler = RateSampler(counter_sources(metrics), interval, window)
        self.errors = LastErrors()
        self.panels: dict[str, ConsolePanel] = {}
        self.admin_gate: AdminGate = open_gate
        """Checked before every console route; see `access` for what replaces it."""
        self.reload: ReloadHandler | None = None
        """What `POST /-/reload` (and the page's reload button) runs; `metricgate run` sets it."""
        self._shape = GatewayShape((), {})
        self._config: Config | None = None
        self._queue_fill: QueueFill = dict
        self.peers: AskPeers | None = None
        """The other workers of a `--workers N` set (their `GRAPH_TOPIC` answers), so the
        graph shows the whole set; the service sets it."""
        self._task: asyncio.Task[None] | None = None
        self._files: dict[str, bytes] = {}

    # --- what the gateway tells the console -------------------------------------------------

    def show_gateway(self, config: Config, queue_fill: QueueFill) -> None:
        """The running graph: drawn from `config`; `queue_fill()` read at request time."""
        self._config = config
        self._shape = GatewayShape.of(config)
        self._queue_fill = queue_fill
        self.errors.watch(self._shape.component_ids())

    def add_panel(self, name: str, panel: ConsolePanel) -> None:
        """Serve `panel` at `/api/console/<name>`; a later panel of the same name replaces it."""
        if name in _BUILT_IN or not name.replace("_", "").isalnum():
            raise ValueError(f"console panel name {name!r} is reserved or not a plain word")
        self.panels[name] = panel

    # --- wiring -----------------------------------------------------------------------------

    def install(self, app: web.Application) -> None:
        """Add the console's routes to `app`, and run the sampler while `app` runs."""
        app[CONSOLE_KEY] = self
        guard = self._guarded
        router = app.router
        router.add_get("/", guard(self._page))
        router.add_get("/console/{file}", guard(self._static))
        router.add_get("/api/console/graph", guard(self._graph))
        router.add_get("/api/console/config", guard(self._config_view))
        router.add_get("/api/console/panels", guard(self._panel_list))
        router.add_get("/api/console/{panel}", guard(self._panel_read))
        router.add_post("/api/console/{panel}", guard(self._panel_act))
        router.add_post("/-/reload", guard(self._reload))
        app.on_startup.append(self._start)
        app.on_cleanup.append(self._stop)

    @staticmethod
    def of(app: web.Application) -> Console | None:
        """The console installed on `app`, if any."""
        return app.get(CONSOLE_KEY)

    def _guarded(self, handler: Handler) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            await self.admin_gate(request)
            return await handler(request)

        return guarded

    async def _start(self, app: web.Application) -> None:
        logging.getLogger("metricgate").addHandler(self.errors)
        self._task = asyncio.create_task(self.sampler.run(), name="console rate sampler")

    async def _stop(self, app: web.Application) -> None:
        logging.getLogger("metricgate").removeHandler(self.errors)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    # --- handlers ---------------------------------------------------------------------------

    async def _page(self, request: web.Request) -> web.StreamResponse:
        return self._file("index.html")

    async def _static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["file"]
        if name not in _STATIC or name == "index.html":
            raise web.HTTPNotFound(text=f"no console file {name!r}\n")
        return self._file(name)

    def _file(self, name: str) -> web.Response:
        body = self._files.get(name)
        if body is None:
            body = resources.files(__package__).joinpath("static", name).read_bytes()
            self._files[name] = body
        return web.Response(
            body=body, content_type=_STATIC[name], charset="utf-8", headers=_HEADERS
        )

    async def _reload(self, request: web.Request) -> web.StreamResponse:
        if self.reload is None:
            return await reload_unavailable(request)
        status, body = await self.reload()
        return web.json_response(body, status=status, headers=_HEADERS)

    def graph_part(self) -> dict[str, Any]:
        """This process' graph report (its part of a set's: what it serves on `GRAPH_TOPIC`)."""
        return graph_report(self._shape, self.sampler, self._queue_fill, self.errors.snapshot())

    async def _graph(self, request: web.Request) -> web.StreamResponse:
        return await self._answer("graph", self._whole_graph)

    async def _whole_graph(self) -> dict[str, Any]:
        mine = self.graph_part()
        if self.peers is None:
            return mine
        theirs = await self.peers(GRAPH_TOPIC, b"")
        return merge_graphs([mine, *(json.loads(part) for part in theirs)])

    async def _config_view(self, request: web.Request) -> web.StreamResponse:
        if self._config is None:
            raise web.HTTPServiceUnavailable(text="the gateway has not shown its config yet\n")
        tree = effective_config(self._config)
        if request.query.get("format") == "yaml":
            text = yaml.safe_dump(tree, sort_keys=False, allow_unicode=True)
            return web.Response(text=text, content_type="text/yaml", headers=_HEADERS)
        return web.json_response(tree, headers=_HEADERS)

    async def _panel_list(self, request: web.Request) -> web.StreamResponse:
        listing = [
            {"name": name, "title": panel.title, "action": panel.act is not None}
            for name, panel in sorted(self.panels.items())
        ]
        return web.json_response({"panels": listing}, headers=_HEADERS)

    async def _panel_read(self, request: web.Request) -> web.StreamResponse:
        name, panel = self._panel(request)
        return await self._answer(name, lambda: panel.read(request.query))

    async def _panel_act(self, request: web.Request) -> web.StreamResponse:
        name, panel = self._panel(request)
        act = panel.act
        if act is None:
            raise web.HTTPMethodNotAllowed(
                "POST", ["GET"], text=f"console panel {name!r} has no action; GET it\n"
            )
        if request.content_type != "application/json":
            raise web.HTTPUnsupportedMediaType(
                text="send the body as JSON (Content-Type: application/json)\n"
            )
        try:
            body = await request.json()
        except ValueError as exc:
            return _problems(f"body: expected a JSON document ({exc})")
        return await self._answer(name, lambda: act(body))

    def _panel(self, request: web.Request) -> tuple[str, ConsolePanel]:
        name = request.match_info["panel"]
        panel = self.panels.get(name)
        if panel is None:
            known = ", ".join(sorted(self.panels)) or "none"
            raise web.HTTPNotFound(
                text=f"no console panel {name!r} in this gateway (panels: {known})\n"
            )
        return name, panel

    async def _answer(self, name: str, compute: Callable[[], Any]) -> web.Response:
        try:
            result = compute()
            if inspect.isawaitable(result):
                result = await result
        except ConfigError as exc:
            return _problems(*exc.problems)
        except UnavailableError as exc:
            return web.json_response(
                {"error": str(exc)}, status=503, headers={**_HEADERS, "Retry-After": "1"}
            )
        except Exception:
            log.exception("console panel failed", extra={"panel": name})
            return web.json_response(
                {"error": f"console panel {name!r} failed; the gateway log has the details"},
                status=500,
                headers=_HEADERS,
            )
        return web.json_response(result, headers=_HEADERS)


CONSOLE_KEY = web.AppKey("metricgate_console", Console)
GRAPH_TOPIC = "console/graph"
"""What each worker of a set answers with its graph report (`Console.graph_part`)."""


async def reload_unavailable(request: web.Request) -> web.StreamResponse:
    """`POST /-/reload` where nothing can reload (no `Console.reload`): 501, and what to do."""
    return web.json_response(
        {"status": "unavailable", "message": RELOAD_UNAVAILABLE}, status=501, headers=_HEADERS
    )


def _problems(*problems: str) -> web.Response:
    return web.json_response(
        {"error": "; ".join(problems), "problems": list(problems)},
        status=400,
        headers=_HEADERS,
    )
