"""The `datadog` exporter component: map (`mapping.py`), pack (`payload.py`) and submit.

Answers, as Datadog's own clients and the Collector's exporter treat them: 2xx sent; 408, 429 and
5xx retryable (429 waits for `X-RateLimit-Reset`, else `Retry-After`); network errors and timeouts
retryable; 400, 403, 404, 413 and any other 4xx permanent: the payload is dropped and the intake's
`errors` logged.

A batch maps to several bodies, each knowing how many data points it carries. When some fail
retryably, `export` raises `PartialExportError` whose remainder is the unsent bodies themselves (an
`Unsent`): the sending core retries only those, and the batch is never mapped twice (that would
advance the cumulative state twice and lose the deltas). Bodies refused for good are dropped and
counted; the rest count as delivered.

Invariant: a body that got a 2xx is never sent again.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl

import aiohttp

from metricgate.errors import PermanentError, RetryableError
from metricgate.exporters.datadog import payload
from metricgate.exporters.datadog.config import DatadogExporterConfig
from metricgate.exporters.datadog.mapping import Mapper
from metricgate.model import Batch
from metricgate.pipeline.component import Exporter
from metricgate.pipeline.host import Host
from metricgate.pipeline.registry import exporter_factory
from metricgate.pipeline.retry import (
    Unsent,
    points_per_request,
    points_with_output,
    retry_after_seconds,
    send_requests,
)

log = logging.getLogger("metricgate.exporters.datadog")
_INLINE_SERIES = 2_000
"""Above this many series, bodies are built (compressed) in a worker thread."""


class DatadogExporter(Exporter):
    """Submits batches to Datadog's v2 series intake."""

    def __init__(self, component_id: str, config: DatadogExporterConfig) -> None:
        super().__init__(component_id)
        self.config = config
        self.url = config.url
        self.mapper = Mapper(config.metrics, config.hostname or socket.gethostname())
        self._host: Host | None = None
        self._session: aiohttp.ClientSession | None = None
        self._headers: dict[str, str] = {"Content-Type": "application/json"}
        encoding = payload.CONTENT_ENCODING[config.compression]
        if encoding:
            self._headers["Content-Encoding"] = encoding

    async def start(self, host: Host) -> None:
        self._host = host
        api = self.config.api
        key = api.key
        if api.key_file:
            with open(api.key_file, encoding="utf-8") as file:
                key = file.read().strip()
        self._headers["DD-API-KEY"] = key
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=ssl.create_default_context()),
            timeout=aiohttp.ClientTimeout(total=self.config.timeout),
        )

    async def shutdown(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def _bodies(self, batch: Batch) -> list[tuple[bytes, int]]:
        """`batch` as (body, points carried) pairs."""
        followers: list[int] = []
        series = self.mapper.map(batch, followers=followers)  # in the loop: it owns the state
        if len(series) > _INLINE_SERIES:
            built = await asyncio.to_thread(payload.build, series, self.config.compression)
        else:
            built = payload.build(series, self.config.compression)
        dropped = self.mapper.take_dropped()
        if built.oversized:
            dropped["series_too_large"] += built.oversized
        if dropped:
            log.warning(
                "points not sent to datadog",
                extra={"exporter": self.component_id, "reasons": dict(dropped)},
            )
            if self._host is not None:
                for reason, count in dropped.items():
                    self._host.telemetry.exporter_dropped.labels(self.component_id, reason).inc(
                        count
                    )
        if len(built.bodies) == 1:
            return [(built.bodies[0], points_with_output(len(series), followers))]
        points = points_per_request(followers, built.spans)
        return list(zip(built.bodies, points, strict=True))

    async def export(self, batch: Batch) -> int | None:
        if isinstance(batch, Unsent) and batch.owned_by(self):
            requests: list[tuple[bytes, int]] = batch.requests
        elif not batch:
            return None
        else:
            requests = await self._bodies(batch)
        return await send_requests(self, requests, self._send, "datadog payloads")

    async def _send(self, body: bytes) -> None:
        if self._session is None:
            raise RetryableError("datadog exporter is not started", 0.0)
        try:
            async with self._session.post(self.url, data=body, headers=self._headers) as response:
                status = response.status
                if 200 <= status < 300:
                    return
                answer = (await response.read())[:500].decode("utf-8", "replace")
                message = f"HTTP {status} from {self.url}: {answer}"
                if status in (408, 429) or status >= 500:
                    wait = retry_after_seconds(
                        response.headers.get("X-RateLimit-Reset")
                        or response.headers.get("Retry-After")
                    )
                    raise RetryableError(message, wait)
                raise PermanentError(message)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise RetryableError(f"POST {self.url}: {type(exc).__name__}: {exc}", 0.0) from exc


FACTORY = exporter_factory(
    "datadog", DatadogExporterConfig, DatadogExporter, "submits series to Datadog"
)
