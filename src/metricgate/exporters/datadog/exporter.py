"""The `datadog` exporter component: map (`mapping.py`), pack (`payload.py`) and submit.

Answers, as Datadog's own clients and the Collector's exporter treat them: 2xx sent; 408, 429 and
5xx retryable (429 waits for `X-RateLimit-Reset`, else `Retry-After`); network errors and timeouts
retryable; 400, 403, 404, 413 and any other 4xx permanent: the payload is dropped and the intake's
`errors` logged.

A batch maps to several bodies. Those already accepted are not sent again when the queue retries
the batch: the bodies still owed are kept per batch (mapping twice would also advance the
cumulative state twice and lose the deltas). At most a few batches are in flight (one per queue
worker), so the table keeps the most recent `2 * num_consumers` and forgets older ones, which the
queue has given up on.

Invariant: a body that got a 2xx is never sent again.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections import OrderedDict

import aiohttp

from metricgate.errors import PermanentError, RetryableError
from metricgate.exporters.datadog import payload
from metricgate.exporters.datadog.config import DatadogExporterConfig
from metricgate.exporters.datadog.mapping import Mapper
from metricgate.exporters.otlp.status import retry_after_header
from metricgate.model import Batch
from metricgate.pipeline.component import Exporter
from metricgate.pipeline.host import Host
from metricgate.pipeline.registry import exporter_factory

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
        self._owed: OrderedDict[int, tuple[Batch, list[bytes]]] = OrderedDict()
        self._max_owed = 2 * config.sending_queue.num_consumers

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

    async def _bodies(self, batch: Batch) -> list[bytes]:
        """The bodies still owed for `batch`, mapping it on first sight."""
        found = self._owed.get(id(batch))
        if found is not None and found[0] is batch:
            return found[1]
        series = self.mapper.map(batch)  # here, in the loop: it owns the cumulative state
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
        self._owed[id(batch)] = (batch, built.bodies)
        while len(self._owed) > self._max_owed:
            self._owed.popitem(last=False)
        return built.bodies

    async def export(self, batch: Batch) -> None:
        if not batch:
            return
        bodies = await self._bodies(batch)
        retry: RetryableError | None = None
        permanent: list[str] = []
        owed: list[bytes] = []
        for body in bodies:
            try:
                await self._send(body)
            except RetryableError as exc:
                owed.append(body)
                retry = exc if retry is None or exc.retry_after > retry.retry_after else retry
            except PermanentError as exc:
                log.error(
                    "datadog refused a payload; dropped",
                    extra={"exporter": self.component_id, "error": str(exc)},
                )
                permanent.append(str(exc))
        if retry is not None:
            bodies[:] = owed
            raise retry
        self._owed.pop(id(batch), None)
        if permanent:
            raise PermanentError(
                f"{len(permanent)} of {len(bodies)} payloads refused: {permanent[0]}"
            )

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
                    wait = retry_after_header(
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
