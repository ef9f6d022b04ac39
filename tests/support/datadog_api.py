"""A local Datadog dashboards API (`/api/v1/dashboard`) that checks requests as the real one does.

It wants both keys (`DD-API-KEY`, `DD-APPLICATION-KEY`: 403 otherwise) and parses each dashboard
with datadog-api-client's `Dashboard` model, refusing (400) a document any part of which the model
leaves unparsed. It lists, creates (POST) and replaces (PUT) dashboards, keyed by generated ids.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from datadog_api_client.configuration import Configuration
from datadog_api_client.model_utils import OpenApiModel, validate_and_convert_types
from datadog_api_client.v1.model.dashboard import Dashboard

API_KEY = "0123456789abcdef0123456789abcdef"
APP_KEY = "fedcba9876543210fedcba9876543210fedcba98"
_CONFIGURATION = Configuration()  # type: ignore[no-untyped-call]


def unparsed_parts(model: Any, path: str = "dashboard") -> list[str]:
    """Where (as a path) a parsed model, or a model inside it, did not match its schema."""
    found: list[str] = []
    if isinstance(model, OpenApiModel):
        # vars(): the models answer getattr of a missing attribute by recursing forever.
        state = vars(model)
        if state.get("_unparsed"):
            found.append(path)
        for instance in state.get("_composed_instances") or ():
            found += unparsed_parts(instance, path)
        for name, value in state.get("_data_store", {}).items():
            found += unparsed_parts(value, f"{path}.{name}")
    elif isinstance(model, list):
        for index, item in enumerate(model):
            found += unparsed_parts(item, f"{path}[{index}]")
    return found


def parse_dashboard(document: Any) -> Dashboard:
    """`document` as a `Dashboard`; ValueError naming what does not fit the schema."""
    model = validate_and_convert_types(  # type: ignore[no-untyped-call]
        document, (Dashboard,), ["dashboard"], True, True, _CONFIGURATION
    )
    bad = unparsed_parts(model)
    if bad:
        raise ValueError(f"does not match the Dashboard schema at {', '.join(bad)}")
    assert isinstance(model, Dashboard)
    return model


@dataclass
class DashboardApi:
    """A running fake API: the dashboards it holds, and every call made to it."""

    url: str = ""
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    _ids: Any = field(default_factory=lambda: (f"abc-{n:03d}-xyz" for n in itertools.count()))

    def _check_keys(self, request: web.Request) -> None:
        if (
            request.headers.get("DD-API-KEY") != API_KEY
            or request.headers.get("DD-APPLICATION-KEY") != APP_KEY
        ):
            raise web.HTTPForbidden(text=json.dumps({"errors": ["Forbidden"]}))

    async def _document(self, request: web.Request) -> dict[str, Any]:
        try:
            document = await request.json()
            parse_dashboard(document)
        except ValueError as exc:
            raise web.HTTPBadRequest(text=json.dumps({"errors": [str(exc)]})) from None
        assert isinstance(document, dict)
        return document

    async def list(self, request: web.Request) -> web.Response:
        self.calls.append("GET")
        self._check_keys(request)
        items = [{"id": key, "title": d["title"]} for key, d in self.dashboards.items()]
        return web.json_response({"dashboards": items})

    async def create(self, request: web.Request) -> web.Response:
        self.calls.append("POST")
        self._check_keys(request)
        document = await self._document(request)
        key = next(self._ids)
        self.dashboards[key] = document
        return web.json_response({**document, "id": key})

    async def update(self, request: web.Request) -> web.Response:
        key = request.match_info["id"]
        self.calls.append(f"PUT {key}")
        self._check_keys(request)
        if key not in self.dashboards:
            raise web.HTTPNotFound(text=json.dumps({"errors": ["Dashboard not found"]}))
        self.dashboards[key] = await self._document(request)
        return web.json_response({**self.dashboards[key], "id": key})


@asynccontextmanager
async def running_dashboard_api() -> AsyncIterator[DashboardApi]:
    api = DashboardApi()
    app = web.Application()
    app.router.add_get("/api/v1/dashboard", api.list)
    app.router.add_post("/api/v1/dashboard", api.create)
    app.router.add_put("/api/v1/dashboard/{id}", api.update)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    api.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield api
    finally:
        await runner.cleanup()
