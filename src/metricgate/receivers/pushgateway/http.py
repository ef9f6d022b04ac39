"""The Pushgateway push API on aiohttp: `PUT`, `POST`, `DELETE` `/metrics/job/<job>{/<l>/<v>}`.

Answers, as the Pushgateway's: 200 for a `PUT` or `POST` taken, 202 for a `DELETE` (also of a
group that does not exist), 400 with a message for a bad path, a bad body (text, or the delimited
protobuf format client_golang pushes; with its line or message number), timestamps on pushed
samples (the Pushgateway refuses them too), a family another group holds with another type, or
reserved names; 405 (`Allow: PUT, POST, DELETE`) for other methods; 415 for another protobuf
message type or a `Content-Encoding` other than gzip; 413 for bodies over
the limits; 429 or 503 with `Retry-After` when the memory limiter or the pipeline pushes back (the
group is then left unchanged); 500 for a bug.

Pushes are applied one at a time, in arrival order (a lock around plan, deliver, commit), so a
`DELETE` followed by a `PUT` never lands the other way round.

Invariant: no request makes the server hold more than `max_request_body_size` bytes of body plus
`max_decompressed_size` bytes of decompressed body.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Final

from aiohttp import ClientError, web

from metricgate.errors import MemoryLimitError, PermanentError, RetryableError
from metricgate.pipeline.component import Consumer
from metricgate.pipeline.host import Host
from metricgate.receivers.listener import RETRYABLE_STATUS, HttpListener, Refused
from metricgate.receivers.otlp import compression
from metricgate.receivers.pushgateway.config import PushgatewayReceiverConfig
from metricgate.receivers.pushgateway.groups import GroupStore, Plan, grouping_key
from metricgate.receivers.pushgateway.points import PushError, convert, parse_push
from metricgate.wire.exposition import ExpositionError, Format, format_of

log = logging.getLogger("metricgate.receivers.pushgateway")

TRANSPORT: Final = "http"
_METHODS: Final = ("PUT", "POST", "DELETE")


class PushgatewayServer:
    """The HTTP listener of one `pushgateway` receiver, with its groups."""

    def __init__(
        self,
        receiver_id: str,
        config: PushgatewayReceiverConfig,
        consumer: Consumer,
        host: Host,
        store: GroupStore,
    ) -> None:
        self.receiver_id = receiver_id
        self.config = config
        self.consumer = consumer
        self.host = host
        self.store = store
        self.port: int | None = None
        self._listener = HttpListener("pushgateway", config.endpoint, config.max_request_body_size)
        self._lock = asyncio.Lock()
        telemetry = host.telemetry
        self._accepted = telemetry.receiver_accepted.labels(receiver_id, TRANSPORT)
        self._refused = telemetry.receiver_refused
        self._requests = telemetry.receiver_requests

    async def start(self) -> int:
        """Bind and serve; return the port (useful with port 0)."""
        self.port = await self._listener.start("/metrics/{tail:.*}", self._serve)
        return self.port

    async def stop(self) -> None:
        await self._listener.stop()

    async def _serve(self, request: web.Request) -> web.Response:
        try:
            status = await self._handle(request)
        except Refused as refused:
            return self._answer_refusal(refused, request)
        self._requests.labels(self.receiver_id, TRANSPORT, str(status)).inc()
        return web.Response(status=status)

    async def _handle(self, request: web.Request) -> int:
        method = request.method
        if method not in _METHODS:
            raise Refused(405, "unsupported", f"method {method} not allowed")
        try:
            key = grouping_key(request.rel_url.raw_path)
        except PushError as exc:
            raise Refused(400, "malformed", str(exc)) from None
        converted = []
        if method != "DELETE":
            body, body_format = await self._body(request)
            try:
                page = parse_push(body, body_format)
                converted = convert(page, key, self.store.resource, self.store.scope)
            except (ExpositionError, PushError) as exc:
                raise Refused(400, "malformed", f"bad push: {exc}") from None
        async with self._lock:
            try:
                plan = self.store.plan(method, key, converted)
            except PushError as exc:
                raise Refused(400, "malformed", f"bad push: {exc}") from None
            await self._deliver(plan)
            self.store.commit(plan)
        return 202 if method == "DELETE" else 200

    async def _body(self, request: web.Request) -> tuple[bytes, Format]:
        content_type = request.headers.get("Content-Type", "")
        body_format = format_of(content_type)
        if body_format is None:
            raise Refused(
                415,
                "unsupported",
                f"unsupported Content-Type {content_type!r}: push the text format or "
                "proto=io.prometheus.client.MetricFamily; encoding=delimited",
            )
        try:
            encoding = compression.coding(request.headers.get("Content-Encoding", ""))
        except compression.UnsupportedEncodingError as exc:
            raise Refused(415, "unsupported", str(exc)) from None
        if encoding not in ("", "gzip"):
            raise Refused(415, "unsupported", f"unsupported Content-Encoding {encoding!r}")
        limit = self.config.max_request_body_size
        length = request.content_length
        if length is not None and length > limit:
            raise Refused(413, "too_large", f"body of {length} bytes is over the {limit} limit")
        try:
            self.host.memory.check()
        except MemoryLimitError as exc:
            raise Refused(429, exc.reason, str(exc), exc.retry_after) from None
        chunks: list[bytes] = []
        total = 0
        try:
            async for chunk in request.content.iter_any():
                total += len(chunk)
                if total > limit:
                    raise Refused(413, "too_large", f"body is over the {limit} byte limit")
                chunks.append(chunk)
        except (ClientError, ConnectionError) as exc:
            raise Refused(400, "malformed", f"body could not be read: {exc}") from None
        try:
            body = compression.decompress(
                b"".join(chunks), encoding, self.config.max_decompressed_size
            )
        except compression.TooLargeError as exc:
            raise Refused(413, "too_large", str(exc)) from None
        except compression.CorruptBodyError as exc:
            raise Refused(400, "malformed", str(exc)) from None
        return body, body_format

    async def _deliver(self, plan: Plan) -> None:
        if not plan.points:
            return
        try:
            await self.consumer.consume(plan.batch)
        except RetryableError as exc:
            status = RETRYABLE_STATUS.get(exc.reason, 503)
            raise Refused(status, exc.reason, str(exc), exc.retry_after, plan.points) from None
        except PermanentError as exc:
            raise Refused(400, "permanent", str(exc), None, plan.points) from None
        except Exception as exc:
            log.exception(
                "pushgateway receiver: consumer failed unexpectedly",
                extra={"receiver": self.receiver_id},
            )
            raise Refused(500, "internal", repr(exc), None, plan.points) from None
        self._accepted.inc(plan.points)

    def _answer_refusal(self, refused: Refused, request: web.Request) -> web.Response:
        headers: dict[str, str] = {}
        if refused.retry_after is not None and refused.status in (429, 503):
            headers["Retry-After"] = str(max(1, math.ceil(refused.retry_after)))
        if refused.status == 405:
            headers["Allow"] = ", ".join(_METHODS)
        if refused.points:
            self._refused.labels(self.receiver_id, TRANSPORT, refused.reason).inc(refused.points)
        log.warning(
            "pushgateway request refused: %s",
            refused.message,
            extra={"receiver": self.receiver_id, "peer": request.remote, "reason": refused.reason},
        )
        self._requests.labels(self.receiver_id, TRANSPORT, str(refused.status)).inc()
        return web.Response(status=refused.status, text=refused.message + "\n", headers=headers)
