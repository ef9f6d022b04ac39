"""Connection limits and timeouts for one aiohttp listener.

asyncio hands each accepted connection to a `GuardedConnection`, which forwards every callback to
aiohttp's request handler (created only for a connection that is let in) and tells the listener's
`ConnectionGuard` what the connection is doing:

- *waiting for headers*: just accepted, or a byte of the next request has arrived after a
  response. It must complete a request's headers within `read_header_timeout` of that moment.
- *idle*: a response was sent, nothing of the next request has arrived; closed after
  `idle_timeout`.
- *busy*: a request is being handled (from its headers to the handler's return; the HTTP
  receivers bound the body with their own `read_timeout`). A busy connection is never closed here.

Deadlines are checked by one sweep per listener every quarter of the shorter timeout (at most a
second, so a connection is closed at most that late), not by a timer per connection: a request
costs two dictionary updates, not the scheduling and cancelling of timers.

At `max_connections` (or when the process's connections reach three quarters of its open-file
limit), a new connection closes the connection that has waited longest for its headers, else the
one idle longest; when every connection is busy, the new one is answered `503` and closed. So
connections that send nothing, or half a header, cannot lock real clients out, however many
there are: they are the first to go.

Invariant: a connection is in `_open` from acceptance to its closing, and in exactly one of
`_headers` (oldest first), `_idle` (oldest first) or neither (busy) meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web

from metricgate.config.listeners import HttpListenerSettings

log = logging.getLogger(__name__)

BUSY_ANSWER: Final = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 33\r\n"
    b"Retry-After: 1\r\nConnection: close\r\n\r\ntoo many connections, retry later"
)
MAX_SWEEP_S: Final = 1.0


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
        self._headers: dict[GuardedConnection, None] = {}
        self._idle: dict[GuardedConnection, None] = {}
        timeouts = [t for t in (self.header_timeout, self.idle_timeout) if t > 0]
        self._sweep_every = min(MAX_SWEEP_S, min(timeouts) / 4) if timeouts else 0.0
        self._sweeper: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def open(self) -> int:
        return len(self._open)

    @property
    def busy(self) -> int:
        return len(self._open) - len(self._headers) - len(self._idle)

    def protocol(self) -> GuardedConnection:
        """The protocol factory for `loop.create_server`."""
        return GuardedConnection(self)

    def on_close(self, transport: asyncio.BaseTransport, callback: Callable[[], None]) -> bool:
        """Call `callback` once when the connection of `transport` closes, for whatever reason;
        False (and never called) when this guard does not hold that connection."""
        connection = self._open.get(transport)
        if connection is None:
            return False
        if connection.closers is None:
            connection.closers = []
        connection.closers.append(callback)
        return True

    def stop(self) -> None:
        """Stop sweeping (the listener is closing its connections)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Marks the request's connection busy while its handler runs."""
        transport = request.transport
        connection = self._open.get(transport) if transport is not None else None
        if connection is None:
            return await handler(request)
        self._headers.pop(connection, None)
        self._idle.pop(connection, None)
        connection.idle = False
        try:
            return await handler(request)
        finally:
            if connection.transport is not None:
                self._wait(connection, self._idle)

    def _admit(self, connection: GuardedConnection, transport: asyncio.BaseTransport) -> bool:
        if len(self._open) >= self.limit or _Process.count >= self._process_capacity:
            victim = next(iter(self._headers), None) or next(iter(self._idle), None)
            if victim is None:
                self.closed["refused"] += 1
                log.debug("connection refused: all busy", extra={"listener": self.owner})
                return False
            self._close(victim, "evicted")
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        self._open[transport] = connection
        _Process.count += 1
        self._wait(connection, self._headers)
        return True

    def _wait(self, connection: GuardedConnection, state: dict[GuardedConnection, None]) -> None:
        """Mark `connection` waiting in `state` (`_headers` or `_idle`) from now."""
        assert self._loop is not None
        self._headers.pop(connection, None)
        self._idle.pop(connection, None)
        state[connection] = None
        connection.idle = state is self._idle
        connection.since = self._loop.time()
        if self._sweeper is None and self._sweep_every:
            self._sweeper = self._loop.call_later(self._sweep_every, self._sweep)

    def _first_byte(self, connection: GuardedConnection) -> None:
        """A request starts arriving on an idle connection: its headers are now on the clock."""
        if connection.transport is not None:
            self._wait(connection, self._headers)

    def _sweep(self) -> None:
        assert self._loop is not None
        self._sweeper = None
        now = self._loop.time()
        for state, timeout, why in (
            (self._headers, self.header_timeout, "header_timeout"),
            (self._idle, self.idle_timeout, "idle_timeout"),
        ):
            while timeout > 0 and state:
                oldest = next(iter(state))
                if oldest.since + timeout > now:
                    break
                self._close(oldest, why)
        if self._headers or self._idle:
            self._sweeper = self._loop.call_later(self._sweep_every, self._sweep)

    def _forget(self, connection: GuardedConnection) -> None:
        """The connection is closing: it no longer counts, whatever made it close."""
        transport = connection.transport
        if transport is None or self._open.pop(transport, None) is None:
            return
        _Process.count -= 1
        self._headers.pop(connection, None)
        self._idle.pop(connection, None)

    def _close(self, connection: GuardedConnection, why: str) -> None:
        transport = connection.transport
        self._forget(connection)
        if transport is not None:
            self.closed[why] += 1
            transport.close()


class GuardedConnection(asyncio.Protocol):
    """One accepted connection: forwards to aiohttp's handler, reports to its guard."""

    __slots__ = ("closers", "guard", "handler", "idle", "since", "transport")

    def __init__(self, guard: ConnectionGuard) -> None:
        self.guard = guard
        self.closers: list[Callable[[], None]] | None = None
        """Called when the connection closes (what a tenant holds on it is given back)."""
        self.handler: asyncio.Protocol | None = None
        self.transport: asyncio.BaseTransport | None = None
        self.idle = False
        """True while idle after a response: the next byte starts the header timeout."""
        self.since = 0.0
        """When the connection started waiting (loop time)."""

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
        if self.idle:
            self.guard._first_byte(self)
        self.handler.data_received(data)

    def eof_received(self) -> bool | None:
        return self.handler.eof_received() if self.handler is not None else None

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard._forget(self)
        self.transport = None
        closers, self.closers = self.closers, None
        for closer in closers or ():
            try:
                closer()
            except Exception:
                log.exception("close callback failed", extra={"listener": self.guard.owner})
        handler, self.handler = self.handler, None
        if handler is not None:
            handler.connection_lost(exc)

    def pause_writing(self) -> None:
        if self.handler is not None:
            self.handler.pause_writing()

    def resume_writing(self) -> None:
        if self.handler is not None:
            self.handler.resume_writing()
