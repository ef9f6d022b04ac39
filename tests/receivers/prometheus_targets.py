"""Scrape targets for the `prometheus` receiver's tests: real client libraries and a page server.

`PageServer` serves whatever page (status, content type, delay) a test sets per path, so one
server stands for many targets; `python_client_target` is prometheus_client's own HTTP server.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Page:
    body: bytes = b""
    content_type: str = "text/plain; version=0.0.4; charset=utf-8"
    status: int = 200
    delay: float = 0.0
    location: str = ""
    """With a 3xx `status`: where the answer redirects to."""


@dataclass
class PageServer:
    """An aiohttp server answering each path with the `Page` set for it."""

    pages: dict[str, Page] = field(default_factory=dict)
    requests: list[web.Request] = field(default_factory=list)
    port: int = 0

    def set(self, path: str, body: str | bytes, **options: object) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.pages[path] = Page(data, **options)  # type: ignore[arg-type]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request)
        page = self.pages.get(request.path)
        if page is None:
            return web.Response(status=404)
        if page.delay:
            await asyncio.sleep(page.delay)
        headers = {"Content-Type": page.content_type}
        if page.location:
            headers["Location"] = page.location
        return web.Response(body=page.body, status=page.status, headers=headers)


@asynccontextmanager
async def page_server() -> AsyncIterator[PageServer]:
    server = PageServer()
    app = web.Application()
    app.router.add_get("/{tail:.*}", server._serve)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.port = runner.addresses[0][1]
    try:
        yield server
    finally:
        await runner.cleanup()
