"""A local HTTP SD endpoint whose answer a test sets, recording the requests it gets."""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Endpoint:
    """What the fake HTTP SD endpoint answers next, and the requests it got."""

    body: str = "[]"
    status: int = 200
    content_type: str = "application/json"
    requests: list[web.Request] = field(default_factory=list)
    url: str = ""

    def groups(self, groups: object) -> None:
        self.body = json.dumps(groups)


async def serve(endpoint: Endpoint, context: ssl.SSLContext | None = None) -> web.AppRunner:
    async def handle(request: web.Request) -> web.Response:
        endpoint.requests.append(request)
        return web.Response(
            status=endpoint.status,
            body=endpoint.body.encode(),
            headers={"Content-Type": endpoint.content_type},
        )

    app = web.Application()
    app.router.add_get("/sd", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    scheme = "https" if context else "http"
    endpoint.url = f"{scheme}://127.0.0.1:{runner.addresses[0][1]}/sd"
    return runner
