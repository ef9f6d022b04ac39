"""The Pushgateway push API, on the receiver skeleton: `PUT`, `POST`, `DELETE` `/metrics/job/...`.

Answers, as the Pushgateway's: 200 for a `PUT` or `POST` taken, 202 for a `DELETE` (also of a
group that does not exist), 400 with a message for a bad path, a bad body (text, or the delimited
protobuf format client_golang pushes; with its line or message number), timestamps on pushed
samples (the Pushgateway refuses them too), a family another group holds with another type, or
reserved names; 405 (`Allow: PUT, POST, DELETE`) for other methods; 415 for another protobuf
message type or a `Content-Encoding` other than gzip; 413 for bodies over the limits; 408 for a
body not received within `read_timeout`; 429 or 503 with `Retry-After` when the memory limiter,
the in-flight budget or the pipeline pushes back (the group is then left unchanged); 500 for a
bug. The skeleton (`receiving/http.py`) does the method, admission, the bounded read and
decompression; this module the path, the body format and the groups.

Pushes are applied one at a time, in arrival order (a lock around plan, deliver, commit), so a
`DELETE` followed by a `PUT` never lands the other way round.

With `auth`, groups are kept per tenant (a tenant's `PUT` never replaces another tenant's group of
the same grouping key), and families of metrics the tenant may not write are left out of the push:
the rest is applied and the answer is 400 naming the refused metrics (the push is not retried;
the Pushgateway clients report the message).

Invariant: the body is parsed and dropped before the lock and the pipelines are awaited.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Final, cast

from aiohttp import web

from metricgate.errors import MalformedError, UnsupportedError
from metricgate.pipeline.component import Consumer
from metricgate.pipeline.host import Host
from metricgate.receivers.pushgateway.config import PushgatewayReceiverConfig
from metricgate.receivers.pushgateway.groups import GroupStore, grouping_key
from metricgate.receivers.pushgateway.points import Converted, PushError, convert, parse_push
from metricgate.receiving.compression import Body
from metricgate.receiving.core import ReceiverCore, RequestInfo
from metricgate.receiving.http import HttpReceiver, HttpRequest
from metricgate.wire.exposition import ExpositionError, Format, Labels, format_of

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
        self.config = config
        self.store = store
        self.core = ReceiverCore(receiver_id, consumer, host, log)
        self.port: int | None = None
        self._lock = asyncio.Lock()
        self._http = HttpReceiver(
            self.core,
            "",
            config.endpoint,
            config,
            path="/metrics/{tail:.*}",
            methods=_METHODS,
            encodings=("gzip",),
            max_request_body_size=config.max_request_body_size,
            max_decompressed_size=config.max_decompressed_size,
            handle=self._handle,
            config_path=f"receivers.{receiver_id}",
        )

    async def start(self) -> int:
        """Bind and serve; return the port (useful with port 0)."""
        self.port = await self._http.start()
        return self.port

    async def stop(self) -> None:
        await self._http.stop()

    async def _handle(self, request: HttpRequest) -> web.Response:
        method = request.request.method
        try:
            key = grouping_key(request.request.rel_url.raw_path)
        except PushError as exc:
            raise MalformedError(str(exc)) from None
        converted: list[Converted] = []
        if method != "DELETE":
            content_type = request.request.headers.get("Content-Type", "")
            body_format = format_of(content_type)
            if body_format is None:
                raise UnsupportedError(
                    f"unsupported Content-Type {content_type!r}: push the text format or "
                    "proto=io.prometheus.client.MetricFamily; encoding=delimited"
                )
            converted = self._convert(await request.body(), body_format, key)
            request.release()
        converted, not_allowed = self._allowed(converted, request)
        tenant = request.tenant.id if request.tenant is not None else ""
        async with self._lock:
            try:
                plan = self.store.plan(method, key, converted, tenant)
            except PushError as exc:
                raise MalformedError(f"bad push: {exc}") from None
            await self.core.consume(plan.batch, TRANSPORT, request)
            self.store.commit(plan)
        if not_allowed:
            return web.Response(status=400, text=not_allowed + "\n")
        return web.Response(status=202 if method == "DELETE" else 200)

    def _allowed(
        self, converted: list[Converted], info: RequestInfo
    ) -> tuple[list[Converted], str]:
        """The families the tenant may write (before planning, so the group never holds the
        others, and `push_time_seconds`, the gateway's own, is never refused); the message
        naming the others."""
        tenant = info.tenant
        if tenant is None or tenant.rights.unrestricted:
            return converted, ""
        refused: Counter[str] = Counter()
        kept = []
        for family in converted:
            if tenant.rights.allowed(family.metric.name):
                kept.append(family)
            else:
                refused[family.metric.name] += len(family.points)
        if not refused:
            return converted, ""
        return kept, self.core.not_allowed(info, tenant, refused)[1]

    def _convert(self, body: Body, body_format: Format, key: Labels) -> list[Converted]:
        try:
            # The parsers read a bytearray as they read bytes; they are annotated for bytes.
            page = parse_push(cast(bytes, body), body_format)
            del body
            return convert(page, key, self.store.resource, self.store.scope)
        except (ExpositionError, PushError) as exc:
            raise MalformedError(f"bad push: {exc}") from None
