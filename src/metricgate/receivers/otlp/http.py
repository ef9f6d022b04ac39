"""OTLP/HTTP: `POST <metrics_url_path>` with a protobuf or JSON body, on the receiver skeleton.

The skeleton (`receiving/http.py`) checks the method (405, `Allow: POST`), runs admission (the
memory limiter: 429), reads and decompresses the body within its limits (413, 408, 503 when the
in-flight budget is spent; corrupt: 400; `Content-Encoding` not served: 415 with
`Accept-Encoding`, per RFC 9110 section 15.5.16 and RFC 7694, where the Collector answers 400,
which SDKs treat the same, as not retryable). This module adds `Content-Type` (415: only
`application/x-protobuf` and `application/json`), decoding (400) and the answers: error bodies are
a `google.rpc.Status` in the request's encoding (JSON when the request's content type is neither
OTLP one), with a RetryInfo detail for retryable refusals; success is an
`ExportMetricsServiceResponse`, with `partial_success` when points were rejected.

Invariant: the body is decoded and dropped before the pipelines are awaited.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from metricgate.errors import RetryableError, UnsupportedError
from metricgate.receivers.otlp import responses
from metricgate.receivers.otlp.config import HttpProtocolConfig
from metricgate.receivers.otlp.handler import ExportHandler
from metricgate.receiving import compression
from metricgate.receiving.core import Refusal
from metricgate.receiving.http import HttpReceiver, HttpRequest

PROTOBUF: Final = "application/x-protobuf"
JSON: Final = "application/json"
TRANSPORT: Final = "http"


class HttpServer:
    """The OTLP/HTTP listener of one receiver."""

    def __init__(self, config: HttpProtocolConfig, handler: ExportHandler) -> None:
        self.config = config
        self.handler = handler
        self.port: int | None = None
        self._http = HttpReceiver(
            handler.core,
            "http",
            config.endpoint,
            config,
            path=config.metrics_url_path,
            methods=("POST",),
            encodings=compression.SUPPORTED,
            max_request_body_size=config.max_request_body_size,
            max_decompressed_size=config.max_decompressed_size,
            handle=self._handle,
            error_body=_error_body,
            config_path=f"receivers.{handler.core.receiver_id}.protocols.http",
        )

    async def start(self) -> int:
        """Bind and serve; return the port (useful with port 0)."""
        self.port = await self._http.start()
        return self.port

    async def stop(self) -> None:
        await self._http.stop()

    def rebind(self, handler: ExportHandler) -> None:
        """Hot reload: serve a rebuilt receiver's `handler` on this running listener."""
        self.handler = handler
        self._http.rebind(handler.core)

    async def _handle(self, request: HttpRequest) -> web.Response:
        content_type = request.request.content_type
        if content_type not in (PROTOBUF, JSON):
            raise UnsupportedError(
                f"unsupported Content-Type {content_type!r}; use {PROTOBUF} or {JSON}"
            )
        as_json = content_type == JSON
        stamp = self.handler.core.stamp(request)
        result = self.handler.decode(await request.body(), as_json, stamp)
        request.release()
        accepted = await self.handler.consume(result, request)
        body = responses.export_response(accepted.rejected, accepted.error_message, as_json)
        return web.Response(body=body, content_type=JSON if as_json else PROTOBUF)


def _error_body(error: Refusal, request: web.Request) -> tuple[bytes, str]:
    # JSON unless the client speaks protobuf: readable for humans and tools.
    as_json = request.content_type != PROTOBUF
    retry_after = error.retry_after if isinstance(error, RetryableError) else None
    code = responses.CODES[error.grpc_code]
    body = responses.status(code, str(error), as_json, retry_after)
    return body, JSON if as_json else PROTOBUF
