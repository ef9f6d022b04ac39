"""`HttpListener` with raw sockets: header and idle timeouts, the connection limit, eviction.

Every test ends with an ordinary request that must still succeed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from aiohttp import web

from metricgate.listeners import HttpListener, HttpListenerSettings
from tests.support.poll import wait_until

PARTIAL_HEADER = b"GET /ok HTTP/1.1\r\nHost: x\r\nUser-Agent: sl"


@asynccontextmanager
async def serving(
    release: asyncio.Event | None = None, **settings: object
) -> AsyncIterator[HttpListener]:
    """A listener on a free port: `/ok` answers at once, `/held` once `release` is set."""

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def held(request: web.Request) -> web.Response:
        assert release is not None
        await release.wait()
        return web.Response(text="released")

    app = web.Application()
    app.router.add_get("/ok", ok)
    app.router.add_get("/held", held)
    listener = HttpListener(
        'test "listener"', "127.0.0.1:0", HttpListenerSettings.model_validate(settings)
    )
    await listener.start(app)
    try:
        yield listener
    finally:
        await listener.stop()


async def get(listener: HttpListener, path: str = "/ok") -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{listener.port}{path}") as response,
    ):
        return response.status, await response.text()


Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def connect(listener: HttpListener, send: bytes = b"") -> Connection:
    """A raw connection, kept open by the test (dropping the writer would close it)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
    if send:
        writer.write(send)
        await writer.drain()
    return reader, writer


async def closed_by_server(connection: Connection, timeout: float = 10.0) -> bytes:
    """Everything the server sent before closing; fails if it does not close in time."""
    reader, writer = connection
    try:
        return await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()


async def test_connections_without_a_complete_header_are_closed() -> None:
    async with serving(read_header_timeout="300ms") as listener:
        silent = await connect(listener)
        partial = await connect(listener, PARTIAL_HEADER)
        assert await closed_by_server(silent) == b""
        assert await closed_by_server(partial) == b""
        assert listener.guard is not None
        assert listener.guard.closed["header_timeout"] == 2, listener.guard.closed
        assert listener.guard.open == 0
        assert await get(listener) == (200, "ok")


async def test_idle_keep_alive_connections_are_closed() -> None:
    async with serving(read_header_timeout="30s", idle_timeout="300ms") as listener:
        connection = await connect(listener, b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = await connection[0].readuntil(b"ok")
        assert answer.startswith(b"HTTP/1.1 200")
        assert await closed_by_server(connection) == b""
        assert listener.guard is not None
        assert listener.guard.closed["idle_timeout"] == 1
        assert await get(listener) == (200, "ok")


async def test_a_new_connection_evicts_the_one_waiting_longest() -> None:
    async with serving(max_connections=3) as listener:
        assert listener.guard is not None
        guard = listener.guard
        stalled = [await connect(listener, PARTIAL_HEADER) for _ in range(3)]
        await wait_until(lambda: guard.open == 3)
        assert await get(listener) == (200, "ok")
        assert await closed_by_server(stalled[0]) == b""
        assert guard.closed["evicted"] >= 1
        assert guard.open <= 3
        # a flood of stalled connections never keeps ordinary requests out
        flood = [await connect(listener) for _ in range(20)]
        assert await get(listener) == (200, "ok")
        assert guard.open <= 3
        for _, writer in flood + stalled:
            writer.close()


async def test_when_every_connection_is_busy_a_new_one_gets_503() -> None:
    release = asyncio.Event()
    async with serving(release, max_connections=2) as listener:
        assert listener.guard is not None
        busy = [asyncio.create_task(get(listener, "/held")) for _ in range(2)]
        await wait_until(lambda: listener.guard is not None and listener.guard.busy == 2)
        refused = await closed_by_server(await connect(listener))
        assert refused.startswith(b"HTTP/1.1 503") and b"Retry-After: 1" in refused
        assert listener.guard.closed["refused"] == 1
        release.set()
        assert await asyncio.gather(*busy) == [(200, "released")] * 2
        assert await get(listener) == (200, "ok")


async def test_a_busy_connection_is_not_closed_by_the_header_timeout() -> None:
    release = asyncio.Event()
    async with serving(release, read_header_timeout="200ms") as listener:
        busy = asyncio.create_task(get(listener, "/held"))
        await wait_until(lambda: listener.guard is not None and listener.guard.open == 1)
        # a silent connection closed by the header timeout shows that the timeout has passed
        assert await closed_by_server(await connect(listener)) == b""
        release.set()
        assert await busy == (200, "released")
