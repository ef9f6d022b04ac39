"""The HTTP half of the receiver skeleton: what every HTTP receiver does around its protocol.

A request goes through these steps, cheapest first; any of them may raise a `ConsumeError`:

1. the method (405 with `Allow`);
2. admission, `ReceiverCore.admit`, before a byte of the body is read (the memory limiter: 429;
   with `auth`, the listener's `ReceiverAccess`: 401, 403, 429);
3. the receiver's own `handle(request)`, which reads the body through `HttpRequest`:
   `Content-Encoding` (415 with `Accept-Encoding`), the declared `Content-Length` (413), the body
   read with a cap (413; the tenant's `max_request_size` when smaller) within `read_timeout`
   (408), each chunk charged to the process-wide in-flight budget (503 + `Retry-After` when it is
   spent), then decompressed with a cap (413; corrupt: 400), and the rest: decode, the tenant's
   rights (`ReceiverCore.allowed`), `ReceiverCore.consume`, the success answer.

A refusal is answered from the error class alone (`errors.py`): its `http_status`, `Retry-After`
for retryable errors, `WWW-Authenticate` for `Unauthenticated` ones with a challenge, `Allow` on
405, `Accept-Encoding` on 415, a body the receiver renders
(`error_body`), the connection closed after 408 and 413 (the rest of the body is not read) and
after a tenant's connection limit (429: the connection is what it holds too many of). Every
answer is counted by status in `metricgate_receiver_requests_total`; refusals are logged by
`ReceiverCore.refused`, at most one warning per reason every few seconds.

Invariant: no request makes the server hold more than `max_request_body_size` bytes of body plus
`max_decompressed_size` bytes of decompressed data, and every byte held is charged to the
request's lease, given back when the answer is sent.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import Final

from aiohttp import ClientError, web

from metricgate.errors import (
    ConcurrencyLimitError,
    ConsumeError,
    MalformedError,
    MethodNotAllowedError,
    RequestTimeoutError,
    RetryableError,
    TooLargeError,
    Unauthenticated,
)
from metricgate.listeners import HttpListener, HttpReceiverSettings, peer_certificate
from metricgate.receiving import compression
from metricgate.receiving.access import ReceiverAccess
from metricgate.receiving.core import REFUSALS, ReceiverCore, Refusal, RequestInfo

log = logging.getLogger(__name__)

TRANSPORT: Final = "http"
_CLOSE_AFTER: Final = (408, 413)
"""Answers after which the rest of the body is not worth reading: the connection is closed."""

ErrorBody = Callable[[Refusal, web.Request], tuple[bytes, str]]
"""A receiver's error body for a refusal, and its `Content-Type`."""


def text_error_body(error: Refusal, request: web.Request) -> tuple[bytes, str]:
    """The message and a newline, as plain text (remote-write, Pushgateway)."""
    return f"{error}\n".encode(), "text/plain; charset=utf-8"


class HttpRequest(RequestInfo):
    """One request as admission checks and a receiver's handler see it: the aiohttp request,
    what checks read of it, its body readers and its share of the in-flight budget."""

    __slots__ = ("_receiver", "lease", "request")

    def __init__(self, receiver: HttpReceiver, request: web.Request) -> None:
        super().__init__(TRANSPORT, request.remote or "?", receiver.max_request_body_size)
        self._receiver = receiver
        self.request = request
        self.lease = receiver.core.host.inflight.lease()

    @property
    def headers(self) -> Mapping[str, str]:
        return self.request.headers

    @property
    def peer_certificate(self) -> bytes | None:
        return peer_certificate(self.request)

    @property
    def connection(self) -> Hashable:
        return self.request.transport

    def on_close(self, callback: Callable[[], None]) -> bool:
        guard = self._receiver.listener.guard
        transport = self.request.transport
        return guard is not None and transport is not None and guard.on_close(transport, callback)

    async def body(self) -> compression.Body:
        """The body, decompressed as its `Content-Encoding` says (within the receiver's)."""
        receiver = self._receiver
        encoding = compression.coding(
            self.request.headers.get("Content-Encoding", ""), receiver.encodings
        )
        return self.decompress(await self.wire(), encoding)

    async def wire(self) -> bytes:
        """The body as sent, read within `read_timeout` and `max_request_body_size`."""
        receiver = self._receiver
        limit = self.body_limit
        length = self.request.content_length
        if length is not None and length > limit:
            raise TooLargeError(f"body of {length} bytes is over the {limit} limit")
        timeout = receiver.settings.read_timeout
        if not timeout or self.request.content.is_eof():
            return await self._read(limit)  # all there already: no timer to arm and disarm
        try:
            async with asyncio.timeout(timeout):
                return await self._read(limit)
        except TimeoutError:
            raise RequestTimeoutError(
                f"body not received within read_timeout ({timeout:g}s)"
            ) from None

    def decompress(self, wire: bytes, encoding: str) -> compression.Body:
        """`wire` decompressed from `encoding` within `max_decompressed_size`."""
        limit = self._receiver.max_decompressed_size
        body = compression.decompress(wire, encoding, limit, self.lease)
        if body is not wire:
            self.lease.refund(len(wire))
        return body

    def release(self) -> None:
        """The body is decoded and dropped: give its bytes back to the in-flight budget."""
        self.lease.release()

    async def _read(self, limit: int) -> bytes:
        chunks: list[bytes] = []
        total = 0
        charge = self.lease.charge
        try:
            async for chunk in self.request.content.iter_any():
                total += len(chunk)
                if total > limit:
                    raise TooLargeError(f"body is over the {limit} byte limit")
                charge(len(chunk))
                chunks.append(chunk)
        except (ClientError, ConnectionError) as exc:
            raise MalformedError(f"body could not be read: {exc}") from None
        return b"".join(chunks)


Handle = Callable[[HttpRequest], Awaitable[web.StreamResponse]]


class HttpReceiver:
    """One receiver's HTTP endpoint: the shared steps (see module docstring) around `handle`."""

    def __init__(
        self,
        core: ReceiverCore,
        protocol: str,
        endpoint: str,
        settings: HttpReceiverSettings,
        *,
        path: str,
        methods: tuple[str, ...],
        encodings: tuple[str, ...],
        max_request_body_size: int,
        max_decompressed_size: int,
        handle: Handle,
        error_body: ErrorBody = text_error_body,
        config_path: str = "",
    ) -> None:
        self.core = core
        self.settings = settings
        self.path = path
        self.methods = methods
        self.encodings = encodings
        self.max_request_body_size = max_request_body_size
        self.max_decompressed_size = max_decompressed_size
        self._handle = handle
        self._error_body = error_body
        self._allow = ", ".join(methods)
        self._accept_encoding = compression.accept_encoding(encodings)
        owner = f'receiver "{core.receiver_id}"' + (f" ({protocol})" if protocol else "")
        self.listener = HttpListener(owner, endpoint, settings, config_path)
        self.access = ReceiverAccess.of(core, settings)
        """Authentication and tenant limits, when the listener has `auth`."""

    async def start(self) -> int:
        """Bind and serve; return the port (useful with port 0)."""
        app = web.Application(client_max_size=self.max_request_body_size)
        app.router.add_route("*", self.path, self._serve)
        # Bodies stay as sent: receivers decompress with bounds of their own.
        return await self.listener.start(app, auto_decompress=False)

    async def stop(self) -> None:
        await self.listener.stop()

    def rebind(self, core: ReceiverCore) -> None:
        """Hot reload: serve the requests of a rebuilt receiver (`core`) on this running
        listener, its socket and open connections kept."""
        self.core = core
        self.access = ReceiverAccess.of(core, self.settings)

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        wrapped = HttpRequest(self, request)
        try:
            if request.method not in self.methods:
                raise MethodNotAllowedError(
                    f"method {request.method} not allowed, use {' or '.join(self.methods)}"
                )
            await self.core.admit(wrapped, self.access)
            response = await self._handle(wrapped)
        except REFUSALS as error:
            return await self._answer(error, request, wrapped)
        except Exception:
            log.exception("receiver request failed", extra={"receiver": self.core.receiver_id})
            internal = ConsumeError("internal error while handling the request")
            return await self._answer(internal, request, wrapped)
        finally:
            wrapped.release()
        self.core.count_request(TRANSPORT, str(response.status))
        return response

    async def _answer(
        self, error: Refusal, request: web.Request, info: RequestInfo
    ) -> web.Response:
        self.core.refused(error, info)
        status = error.http_status
        body, content_type = self._error_body(error, request)
        headers = {"Content-Type": content_type}
        if isinstance(error, RetryableError):
            headers["Retry-After"] = str(max(1, math.ceil(error.retry_after)))
        elif isinstance(error, Unauthenticated) and error.challenge:
            headers["WWW-Authenticate"] = error.challenge
        if status == 405:
            headers["Allow"] = self._allow
        elif status == 415:
            headers["Accept-Encoding"] = self._accept_encoding
        response = web.Response(status=status, body=body, headers=headers)
        self.core.count_request(TRANSPORT, str(status))
        if status in _CLOSE_AFTER or isinstance(error, ConcurrencyLimitError):
            # Sent now and the connection closed, rather than aiohttp reading (and dropping)
            # the rest of a body that is too large or stalled for up to ten seconds.
            response.force_close()
            await response.prepare(request)
            await response.write_eof()
            request.protocol.force_close()
        return response
