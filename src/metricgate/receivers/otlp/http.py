"""OTLP/HTTP: `POST <metrics_url_path>` with a protobuf or JSON body, on aiohttp.

Checks run cheapest first, so a request refused costs little: method (405, `Allow: POST`),
`Content-Type` (415: only `application/x-protobuf` and `application/json`), `Content-Encoding`
(415 with `Accept-Encoding`: RFC 9110 section 15.5.16 and RFC 7694; the Collector answers 400,
which SDKs treat the same, as not retryable), declared `Content-Length` (413), memory limiter
(429), then the body is read with a cap (413), decompressed with a cap (413; corrupt: 400),
decoded (400) and consumed (429 or 503 with `Retry-After`, 400 for a permanent refusal, 500 for a
bug). Error bodies are a `google.rpc.Status` in the request's encoding (JSON when the request's
content type is neither OTLP one); success is an `ExportMetricsServiceResponse`, with
`partial_success` when points were rejected.

Invariant: no request makes the server hold more than `max_request_body_size` bytes of body plus
`max_decompressed_size` bytes of decompressed data.
"""

from __future__ import annotations

import logging
import math
from typing import Final

from aiohttp import ClientError, web

from metricgate.receivers.listener import HttpListener
from metricgate.receivers.otlp import compression, responses
from metricgate.receivers.otlp.config import HttpProtocolConfig
from metricgate.receivers.otlp.handler import (
    INTERNAL,
    MALFORMED,
    PERMANENT,
    TOO_LARGE,
    UNSUPPORTED,
    Accepted,
    ExportHandler,
    Refusal,
)

log = logging.getLogger("metricgate.receivers.otlp")

PROTOBUF: Final = "application/x-protobuf"
JSON: Final = "application/json"

_HTTP_STATUS: Final = {
    MALFORMED: 400,
    PERMANENT: 400,
    "queue_full": 429,
    "memory_limit": 429,
    "unavailable": 503,
    INTERNAL: 500,
}
_RPC_CODE: Final = {
    429: responses.RESOURCE_EXHAUSTED,
    503: responses.UNAVAILABLE,
    500: responses.INTERNAL,
    405: responses.UNIMPLEMENTED,
}
_ACCEPT_ENCODING: Final = ", ".join(("identity", *compression.SUPPORTED))


class HttpServer:
    """The OTLP/HTTP listener of one receiver."""

    def __init__(self, config: HttpProtocolConfig, handler: ExportHandler) -> None:
        self.config = config
        self.handler = handler
        self.port: int | None = None
        self._listener = HttpListener("otlp http", config.endpoint, config.max_request_body_size)

    async def start(self) -> int:
        """Bind and serve; return the port (useful with port 0)."""
        self.port = await self._listener.start(self.config.metrics_url_path, self._serve)
        return self.port

    async def stop(self) -> None:
        await self._listener.stop()

    async def _serve(self, request: web.Request) -> web.Response:
        peer = request.remote or "?"
        # Error bodies are JSON unless the client speaks protobuf: readable for humans and tools.
        as_json = request.content_type != PROTOBUF
        try:
            accepted = await self._export(request, peer)
        except Refusal as refusal:
            return self._refusal(refusal, as_json)
        self.handler.count_request("http", "200")
        body = responses.export_response(accepted.rejected, accepted.error_message, as_json)
        return web.Response(body=body, content_type=JSON if as_json else PROTOBUF)

    async def _export(self, request: web.Request, peer: str) -> Accepted:
        handler = self.handler
        if request.method != "POST":
            raise _refuse(handler, 405, peer, f"method {request.method} not allowed, use POST")
        content_type = request.content_type
        if content_type not in (PROTOBUF, JSON):
            raise _refuse(
                handler,
                415,
                peer,
                f"unsupported Content-Type {content_type!r}; use {PROTOBUF} or {JSON}",
            )
        try:
            encoding = compression.coding(request.headers.get("Content-Encoding", ""))
        except compression.UnsupportedEncodingError as exc:
            raise _refuse(handler, 415, peer, f"{exc}; supported: {_ACCEPT_ENCODING}") from None
        limit = self.config.max_request_body_size
        length = request.content_length
        if length is not None and length > limit:
            raise _refuse(handler, 413, peer, f"body of {length} bytes is over the {limit} limit")
        handler.admit("http", peer)
        wire = await self._read(request, limit, peer)
        try:
            body = compression.decompress(wire, encoding, self.config.max_decompressed_size)
        except compression.TooLargeError as exc:
            raise _refuse(handler, 413, peer, str(exc)) from None
        except compression.CorruptBodyError as exc:
            raise _refuse(handler, 400, peer, str(exc)) from None
        del wire
        return await handler.export(body, content_type == JSON, "http", peer)

    async def _read(self, request: web.Request, limit: int, peer: str) -> bytes:
        chunks: list[bytes] = []
        total = 0
        try:
            async for chunk in request.content.iter_any():
                total += len(chunk)
                if total > limit:
                    raise _refuse(self.handler, 413, peer, f"body is over the {limit} byte limit")
                chunks.append(chunk)
        except (ClientError, ConnectionError) as exc:
            raise _refuse(self.handler, 400, peer, f"body could not be read: {exc}") from None
        return b"".join(chunks)

    def _refusal(self, refusal: Refusal, as_json: bool) -> web.Response:
        if isinstance(refusal, _HttpRefusal):
            status = refusal.status
        else:
            # A retryable refusal with a reason of its own still tells the client to retry.
            status = _HTTP_STATUS.get(refusal.reason, 500 if refusal.retry_after is None else 503)
        code = _RPC_CODE.get(status, responses.INVALID_ARGUMENT)
        headers: dict[str, str] = {}
        retry_after = refusal.retry_after if status in (429, 503) else None
        if retry_after is not None:
            headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
        if status == 405:
            headers["Allow"] = "POST"
        elif status == 415:
            headers["Accept-Encoding"] = _ACCEPT_ENCODING
        self.handler.count_request("http", str(status))
        body = responses.status(code, refusal.message, as_json, retry_after)
        return web.Response(
            status=status,
            body=body,
            headers=headers,
            content_type=JSON if as_json else PROTOBUF,
        )


class _HttpRefusal(Refusal):
    """A refusal decided by HTTP itself (method, media type, size), with its status code."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(reason, message)
        self.status = status


def _refuse(handler: ExportHandler, status: int, peer: str, message: str) -> Refusal:
    reason = {400: MALFORMED, 413: TOO_LARGE}.get(status, UNSUPPORTED)
    handler.refused("http", reason, peer, message)
    return _HttpRefusal(status, reason, message)
