"""Connection limits and timeouts for one aiohttp listener.

asyncio hands each accepted connection to a `GuardedConnection`, which forwards every callback to
aiohttp's request handler (created only for a connection that is let in) and tells the listener's
`ConnectionGuard` what the connection is doing:

- *waiting*: just accepted, or between two keep-alive requests. It must send a request's headers
  within `read_header_timeout` of being accepted (or of the first byte after a response), and
  may sit idle `idle_timeout` after a response; past its deadline it is closed.
- *busy*: a request is being handled (from its headers to the handler's return; the HTTP
  receivers bound the body with their own `read_timeout`). A busy connection is never closed here.

At `max_connections` (or when the process's connections reach three quarters of its open-file
limit), a new connection closes the connection that has been waiting longest; when every
connection is busy, the new one is answered `503` and closed. So connections that send nothing,
or half a header, cannot lock real clients out, however many there are: they are the first to go.

Invariant: a connection is in `_open` from acceptance to its closing, in `_waiting` exactly while
waiting, and has a deadline timer exactly while waiting (when that timeout is not 0).
"""

from __future__ import annotations

import asyncio
import logging
import resource
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web

from metricgate.listeners.settings import HttpListenerSettings

log = logging.getLogger(__name__)

BUSY_ANSWER: Final = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 33\r\n"
    b"Retry-After: 1\r\nConnection: close\r\n\r\ntoo many connections, retry later"
)


class _Process:
    """Connections held by every guarded listener of the process, against the open-file limit."""

    count = 0

    @staticmethod
    def capacity() -> int:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        return 1 << 30 if soft == resource.RLIM_INFINITY else max(16, soft * 3 // 4)


class ConnectionGuard:
    """Tracks the connections of one listener; enforces its timeouts and connection limit."""

    def __init__(
        self,
        owner: str,
        settings: HttpListenerSettings,
        make_handler: Callable[[], asyncio.Protocol],
    ) -> None:
        self.owner = owner
        self.limit = settings.connection_limit()
        self.header_timeout = settings.read_header_timeout
        self.idle_timeout = settings.idle_timeout
        self.closed: Counter[str] = Counter()
        """Connections this guard closed, by why: `header_timeout`, `idle_timeout`, `evicted`,
        `refused`."""
        self._make_handler = make_handler
        self._process_capacity = _Process.capacity()
        self._open: dict[asyncio.BaseTransport, GuardedConnection] = {}
        self._waiting: dict[GuardedConnection, None] = {}
        """Waiting connections, the one waiting longest first."""

    @property
    def open(self) -> int:
        return len(self._open)

    def protocol(self) -> GuardedConnection:
        """The protocol factory for `loop.create_server`."""
        return GuardedConnection(self)

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Marks the request's connection busy while its handler runs."""
        transport = request.transport
        connection = self._open.get(transport) if transport is not None else None
        if connection is None:
            return await handler(request)
        self._busy(connection)
        try:
            return await handler(request)
        finally:
            if connection.transport is not None:
                self._wait(connection, self.idle_timeout, "idle_timeout")

    def _admit(self, connection: GuardedConnection, transport: asyncio.BaseTransport) -> bool:
        if len(self._open) >= self.limit or _Process.count >= self._process_capacity:
            if not self._waiting:
                self.closed["refused"] += 1
                log.debug("connection refused: all busy", extra={"listener": self.owner})
                return False
            oldest = next(iter(self._waiting))
            self._close(oldest, "evicted")
        self._open[transport] = connection
        _Process.count += 1
        self._wait(connection, self.header_timeout, "header_timeout")
        return True

    def _forget(self, connection: GuardedConnection) -> None:
        """The connection is closing: it no longer counts, whatever made it close."""
        transport = connection.transport
        if transport is None or self._open.pop(transport, None) is None:
            return
        _Process.count -= 1
        self._waiting.pop(connection, None)
        if connection.timer is not None:
            connection.timer.cancel()
            connection.timer = None

    def _close(self, connection: GuardedConnection, why: str) -> None:
        transport = connection.transport
        self._forget(connection)
        if transport is not None:
            self.closed[why] += 1
            transport.close()

    def _busy(self, connection: GuardedConnection) -> None:
        self._waiting.pop(connection, None)
        connection.first_byte = False
        if connection.timer is not None:
            connection.timer.cancel()
            connection.timer = None

    def _wait(self, connection: GuardedConnection, timeout: float, why: str) -> None:
        """Mark `connection` waiting (the newest waiter) with `timeout` from now."""
        self._waiting.pop(connection, None)
        self._waiting[connection] = None
        connection.first_byte = why == "idle_timeout"
        if connection.timer is not None:
            connection.timer.cancel()
            connection.timer = None
        if timeout > 0:
            loop = asyncio.get_running_loop()
            connection.timer = loop.call_later(timeout, self._close, connection, why)

    def _first_byte(self, connection: GuardedConnection) -> None:
        """A request starts arriving on an idle connection: its headers are now on the clock."""
        if connection in self._waiting:
            self._wait(connection, self.header_timeout, "header_timeout")
        else:
            connection.first_byte = False


class GuardedConnection(asyncio.Protocol):
    """One accepted connection: forwards to aiohttp's handler, reports to its guard."""

    __slots__ = ("first_byte", "guard", "handler", "timer", "transport")

    def __init__(self, guard: ConnectionGuard) -> None:
        self.guard = guard
        self.handler: asyncio.Protocol | None = None
        self.transport: asyncio.BaseTransport | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.first_byte = False
        """True while idle after a response: the next byte starts the header timeout."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        if not self.guard._admit(self, transport):
            self.transport = None
            if isinstance(transport, asyncio.WriteTransport):
                transport.write(BUSY_ANSWER)
            transport.close()
            return
        self.handler = self.guard._make_handler()
        self.handler.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.handler is None:
            return
        if self.first_byte:
            self.guard._first_byte(self)
        self.handler.data_received(data)

    def eof_received(self) -> bool | None:
        return self.handler.eof_received() if self.handler is not None else None

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard._forget(self)
        self.transport = None
        handler, self.handler = self.handler, None
        if handler is not None:
            handler.connection_lost(exc)

    def pause_writing(self) -> None:
        if self.handler is not None:
            self.handler.pause_writing()

    def resume_writing(self) -> None:
        if self.handler is not None:
            self.handler.resume_writing()
