"""A lean HTTP/1.1 GET for plain-HTTP scrapes: one kept-alive connection per target.

aiohttp's client spends about 80 us of Python per request on what a scrape does not use (cookie
jar, trace hooks, redirect history, a stream reader and a response object per request); with
1,000 targets every 15 s that is several per cent of the receiver's CPU. `PageFetcher` writes a
prepared request on its target's connection and reads the answer off the socket itself: status
line, headers, a body framed by `Content-Length`, chunked transfer coding or the end of the
connection, decompressed (gzip or deflate) within the job's body limit.

What it does not do is left to aiohttp, which the scrape loop then uses for that target: TLS
(`https` targets never come here) and redirects to follow (`Unhandled`, raised before anything
is returned). Failures are `ScrapeError`s, the one type the whole scrape loop fails with. A
kept-alive connection the target closed while idle is reopened once, as HTTP clients do for an
idempotent request that got no answer byte.

Invariant: a connection is reused only after a complete response with nothing left over and no
`Connection: close`, and only if nothing arrived on it since; after any error or cancellation it
is closed.
"""

from __future__ import annotations

import asyncio
import zlib
from typing import Final
from urllib.parse import urlsplit

_MAX_HEAD: Final = 64 * 1024
"""The largest status line and headers taken."""
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})


class ScrapeError(Exception):
    """A failed scrape (on the wire or after); `reason` is its telemetry label."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Unhandled(Exception):
    """A response this client leaves to aiohttp (a redirect to follow)."""


class _Connection(asyncio.Protocol):
    """Bytes received on one connection, and a way to wait for more."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.closed = False
        self.transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._wake()

    def eof_received(self) -> bool:
        self.closed = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def more(self) -> bool:
        """Wait for more bytes; False once the peer closed and nothing more will come."""
        if self.closed:
            return False
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None
        return True

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        self.closed = True


class PageFetcher:
    """GETs one target's page over a kept-alive connection (see the module docstring)."""

    def __init__(self, url: str, headers: dict[str, str], follow_redirects: bool) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or ""
        self.port = parts.port or 80
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        lines = [f"GET {path} HTTP/1.1", f"Host: {parts.netloc}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self._head = "\r\n".join(lines)
        self.follow_redirects = follow_redirects
        self._connection: _Connection | None = None

    async def get(self, limit: int, authorization: str = "") -> tuple[bytes, str]:
        """The decompressed body and `Content-Type` of a 200 answer; raises `ScrapeError` (or
        `Unhandled` for a redirect to follow)."""
        request = self._head
        if authorization:
            request += f"\r\nAuthorization: {authorization}"
        data = (request + "\r\n\r\n").encode("latin-1")
        connection = self._connection
        self._connection = None
        if connection is not None and connection.buffer:
            connection.close()  # bytes nobody asked for (an idle server's 408): start anew
        try:
            if connection is not None and not connection.closed:
                try:
                    return await self._exchange(connection, data, limit)
                except _Idle:
                    connection.close()  # the target closed it while idle: once more, anew
            connection = await self._open()
            try:
                return await self._exchange(connection, data, limit)
            except _Idle:
                raise ScrapeError(
                    "connection", "scrape failed: the target closed the connection unanswered"
                ) from None
        except BaseException:
            if connection is not None:
                connection.close()
            raise

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def _open(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, connection = await loop.create_connection(_Connection, self.host, self.port)
        except OSError as exc:
            raise ScrapeError("connection", f"scrape failed: {exc!r}") from None
        return connection

    async def _exchange(
        self, connection: _Connection, data: bytes, limit: int
    ) -> tuple[bytes, str]:
        assert connection.transport is not None
        connection.transport.write(data)
        buffer = connection.buffer
        end = buffer.find(b"\r\n\r\n")
        while end < 0:
            if len(buffer) > _MAX_HEAD:
                raise ScrapeError("connection", "scrape failed: response headers too large")
            searched = max(0, len(buffer) - 3)
            if not await connection.more():
                if not buffer:
                    raise _Idle
                raise _closed_early()
            end = buffer.find(b"\r\n\r\n", searched)
        status, reason, headers, keep = _parse_head(bytes(buffer[:end]))
        del buffer[: end + 4]
        if status in _REDIRECTS and self.follow_redirects:
            raise Unhandled
        if status != 200:
            raise status_error(status, reason)
        transfer = headers.get("transfer-encoding", "").lower()
        if "chunked" in transfer:
            body = await _chunked(connection, limit)
        elif "content-length" in headers:
            body = await _sized(connection, _length(headers["content-length"]), limit)
        else:
            body, keep = await _until_closed(connection, limit), False
        if buffer:
            keep = False  # bytes after the response: nothing on this connection can be trusted
        body = _decoded(body, headers.get("content-encoding", ""), limit)
        if keep and not connection.closed:
            self._connection = connection
        else:
            connection.close()
        return body, headers.get("content-type", "")


class _Idle(Exception):
    """A kept-alive connection that closed before any byte of the answer."""


def _closed_early() -> ScrapeError:
    return ScrapeError("connection", "scrape failed: connection closed before the response ended")


def too_big(limit: int) -> ScrapeError:
    """The failure of a page over the body limit (decompressed)."""
    return ScrapeError("body_size_limit", f"body size limit exceeded (more than {limit} bytes)")


def status_error(status: int, reason: str) -> ScrapeError:
    """The failure of an answer other than 200."""
    return ScrapeError("http_status", f"server returned HTTP status {status} {reason}")


def _parse_head(head: bytes) -> tuple[int, str, dict[str, str], bool]:
    """(status, reason, headers with lower-case names, keep-alive) of a response head."""
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
        raise ScrapeError("connection", f"scrape failed: not an HTTP/1.x response: {lines[0]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon:
            raise ScrapeError("connection", f"scrape failed: malformed header line {line!r}")
        key = name.strip().lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    connection = headers.get("connection", "").lower()
    keep = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
    return int(code), reason, headers, keep


def _length(text: str) -> int:
    values = {part.strip() for part in text.split(",")}
    if len(values) != 1 or not next(iter(values)).isdigit():
        raise ScrapeError("connection", f"scrape failed: bad Content-Length {text!r}")
    return int(values.pop())


async def _sized(connection: _Connection, size: int, limit: int) -> bytes:
    if size > limit:
        raise too_big(limit)
    buffer = connection.buffer
    while len(buffer) < size:
        if not await connection.more():
            raise _closed_early()
    body = bytes(buffer[:size])
    del buffer[:size]
    return body


async def _until_closed(connection: _Connection, limit: int) -> bytes:
    buffer = connection.buffer
    while True:
        if len(buffer) > limit:
            raise too_big(limit)
        if not await connection.more():
            break
    body = bytes(buffer)
    buffer.clear()
    return body


async def _chunked(connection: _Connection, limit: int) -> bytes:
    """A chunked body (RFC 9112 7.1): chunks until the zero-size one, then trailers."""
    buffer = connection.buffer
    parts: list[bytes] = []
    size = 0
    while True:
        end = buffer.find(b"\r\n")
        while end < 0:
            if len(buffer) > 4096 or not await connection.more():
                raise _closed_early() if connection.closed else _bad_chunk()
            end = buffer.find(b"\r\n")
        line = bytes(buffer[:end]).split(b";", 1)[0].strip()
        try:
            length = int(line, 16)
        except ValueError:
            raise _bad_chunk() from None
        if length < 0:
            raise _bad_chunk()
        del buffer[: end + 2]
        if length == 0:
            break
        size += length
        if size > limit:
            raise too_big(limit)
        while len(buffer) < length + 2:
            if not await connection.more():
                raise _closed_early()
        if buffer[length : length + 2] != b"\r\n":
            raise _bad_chunk()
        parts.append(bytes(buffer[:length]))
        del buffer[: length + 2]
    while True:  # trailer fields, up to the empty line
        end = buffer.find(b"\r\n")
        while end < 0:
            if len(buffer) > _MAX_HEAD or not await connection.more():
                raise _closed_early() if connection.closed else _bad_chunk()
            end = buffer.find(b"\r\n")
        del buffer[: end + 2]
        if end == 0:
            return b"".join(parts)


def _bad_chunk() -> ScrapeError:
    return ScrapeError("connection", "scrape failed: malformed chunked body")


def _decoded(body: bytes, encoding: str, limit: int) -> bytes:
    """`body` without its content coding, failing past `limit` decompressed bytes."""
    coding = encoding.strip().lower()
    if coding in ("", "identity"):
        return body
    if coding in ("gzip", "x-gzip"):
        decoder = zlib.decompressobj(wbits=31)
    elif coding == "deflate":
        decoder = zlib.decompressobj(wbits=15 if body[:1] == b"\x78" else -15)
    else:
        raise ScrapeError("connection", f"scrape failed: unsupported Content-Encoding {encoding!r}")
    try:
        out = decoder.decompress(body, limit + 1)
        if len(out) > limit:
            raise too_big(limit)
        if not decoder.eof:
            raise ScrapeError("connection", f"scrape failed: truncated {coding} body")
    except zlib.error as exc:
        raise ScrapeError("connection", f"scrape failed: bad {coding} body: {exc}") from None
    return out
