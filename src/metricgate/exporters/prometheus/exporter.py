"""The `prometheus` exporter: serves everything it is given as a Prometheus scrape page.

`export(batch)` folds the batch into a `Store` (no I/O, no awaits); the component's own aiohttp
server answers scrapes of `path` on `endpoint` by streaming `render()` chunks, each encoded (and
gzipped in a worker thread when the scraper accepts gzip, overlapping the next chunk's render)
and written with a yield to the event loop in between, so a scrape of a million series never
blocks ingest or other requests for more than one chunk's rendering (a few milliseconds). A timer
removes series not updated for `metric_expiration`, whether or not anybody scrapes.

The page listens through `HttpListener` (header and idle timeouts, a connection limit, `tls`, a
start-up error naming the exporter). With `auth`, each scrape is authenticated (401, 403 without
the `read` role, 429 for an address that failed too often): a tenant sees only its own series
(those stamped with it by the receivers), a tenant with the `admin` role sees every series.

A hot reload that rebuilds the exporter hands the new one the store (when the series translate
the same) and the page with its listener (when endpoint, path, TLS, auth and the listener settings
are the same): scrapers see the same series on the same socket (`adopt`).

Under `--workers N` every worker serves the port; the one a scrape reaches asks the others for
their part of the page (`metricgate.pipeline.exchange`) and merges them per family, so the page
shows every series once whichever worker answers, or answers 503 while one cannot be asked.

Invariant: the store is only touched from the event loop thread; only encoded bytes cross to the
worker thread.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import zlib
from collections.abc import Iterable
from typing import Final

from aiohttp import web

from metricgate.access import PageGate
from metricgate.errors import UnavailableError
from metricgate.exporters.prometheus.config import PrometheusExporterConfig
from metricgate.exporters.prometheus.negotiate import accepts_gzip, wants_openmetrics
from metricgate.exporters.prometheus.render import (
    OPENMETRICS_CONTENT_TYPE,
    TEXT_CONTENT_TYPE,
    render,
)
from metricgate.exporters.prometheus.store import Store
from metricgate.listeners import HttpListener, HttpListenerSettings
from metricgate.model import Batch
from metricgate.periodic import Periodic, sweep_interval
from metricgate.pipeline.component import Component, Exporter
from metricgate.pipeline.exchange import Exchange
from metricgate.pipeline.host import Host
from metricgate.pipeline.registry import exporter_factory
from metricgate.pipeline.snapshots import StateSnapshot
from metricgate.telemetry.server import set_unavailable
from metricgate.wire.exposition.merge import merge_pages

log = logging.getLogger(__name__)

WRITE_BYTES = 256 * 1024
"""Rendered text is sent in pieces of about this size."""
GZIP_LEVEL = 1
"""Fastest deflate: a scrape page still shrinks about 6x, at a third of level 6's CPU."""


class PrometheusExporter(Exporter):
    """Keeps the latest state of every series and serves it to scrapers (see module docstring)."""

    def __init__(self, component_id: str, config: PrometheusExporterConfig) -> None:
        super().__init__(component_id)
        self.config = config
        self.translator = config.translator(
            resource_attributes=config.resource_attributes,
            const_labels=config.const_labels,
            normalize_units=config.normalize_units,
        )
        self.store = Store(
            self.translator,
            exponential=config.exponential_histograms,
            keep_timestamps=config.send_timestamps,
            keep_exemplars=config.enable_open_metrics,
        )
        self.port: int | None = None
        """The bound TCP port once started (useful with an endpoint on port 0)."""
        self._host: Host | None = None
        self._listener = HttpListener(
            f'exporter "{component_id}"', config.endpoint, config, f"exporters.{component_id}"
        )
        self._expiry = Periodic(
            f"{component_id} expiry sweep", sweep_interval(config.metric_expiration),
            self.expire_now, log, {"exporter": component_id},
        )  # fmt: skip
        self._gate: PageGate | None = None
        self._page: _Page | None = None

    def adopt(self, previous: Component) -> bool:
        """Hot reload: keep `previous`'s series when they are translated the same way, and its
        listening socket (with the connections open on it) when the endpoint, path, TLS, auth
        and listener settings are the same."""
        if not isinstance(previous, PrometheusExporter):
            return False
        taken = False
        if _series_keys(previous.config) == _series_keys(self.config):
            self.translator, self.store = previous.translator, previous.store
            taken = True
        if previous._page is not None and _page_keys(previous.config) == _page_keys(self.config):
            self._listener, self._page = previous._listener, previous._page
            previous._listener, previous._page = HttpListener("", "", self.config), None
            if self._host is not None:  # running already: taking it back from a failed reload
                self._page.exporter = self
            taken = True
        return taken

    async def start(self, host: Host) -> None:
        self._host = host
        if self.config.auth is not None:
            if host.access is None:
                raise RuntimeError(f"exporter {self.component_id!r} has auth but no gateway access")
            guard = host.access.guard(self.component_id, self.config.auth, role="read")
            assert guard is not None
            self._gate = PageGate(guard)
        if self._page is None:
            self._page = _Page(self)
            app = web.Application()
            app.router.add_get(self.config.path, self._page.scrape)
            self.port = await self._listener.start(app)
        else:  # adopted with its listener: from now on the page shows this exporter
            self._page.exporter = self
            self.port = self._listener.port
        if host.exchange is not None:
            host.exchange.answer(self._topic, self._page.part)
        self._expiry.start()
        store, component_id = self.store, self.component_id
        self.observe(
            host.telemetry.exporter_active_series, lambda: {(component_id,): float(len(store))}
        )
        log.info(
            "prometheus exporter listening",
            extra={
                "exporter": self.component_id,
                "endpoint": self.config.endpoint,
                "port": self.port,
            },
        )

    async def shutdown(self) -> None:
        await self._expiry.stop()
        await self._listener.stop()

    # -- state across restarts (`metricgate.pipeline.snapshots`) ---------------------------------

    snapshot_version = 1

    def snapshot_state(self) -> StateSnapshot:
        """The page's series and values."""
        return StateSnapshot(batch=self.store.snapshot())

    def restore_state(self, snapshot: StateSnapshot) -> None:
        self.store.restore(snapshot.batch, time.monotonic())

    async def export(self, batch: Batch) -> int | None:
        """Fold `batch` into the page; returns the points now on it (dropped ones are counted
        in `metricgate_exporter_dropped_points` by reason, not as sent)."""
        drops = self.store.ingest(batch, time.monotonic())
        if not drops:
            return None
        if self._host is not None:
            dropped = self._host.telemetry.exporter_dropped
            for reason, count in drops.items():
                dropped.labels(self.component_id, reason).inc(count)
        return max(0, batch.point_count() - sum(drops.values()))

    async def expire_now(self) -> int:
        """One expiry pass, yielding to the event loop between groups of families."""
        cutoff = time.monotonic() - self.config.metric_expiration
        families = list(self.store.families.values())
        removed = 0
        for start in range(0, len(families), 64):
            removed += self.store.expire(cutoff, families[start : start + 64])
            await asyncio.sleep(0)
        return removed

    async def _scrape(self, request: web.Request) -> web.StreamResponse:
        tenant: str | None = None
        if self._gate is not None:
            reader = (await self._gate.admit(request)).tenant
            assert reader is not None
            tenant = None if reader.can("admin") else reader.id
        openmetrics = self.config.enable_open_metrics and wants_openmetrics(
            request.headers.get("Accept", "")
        )
        gzip = accepts_gzip(request.headers.get("Accept-Encoding", ""))
        exchange = self._host.exchange if self._host is not None else None
        chunks: Iterable[str]
        if exchange is None:
            chunks = render(
                self.store,
                openmetrics=openmetrics,
                timestamps=self.config.send_timestamps,
                tenant=tenant,
            )
        else:
            try:
                chunks = (await self._whole_page(exchange, openmetrics, tenant),)
            except UnavailableError as exc:
                return set_unavailable(exc)
        response = web.StreamResponse()
        response.headers["Content-Type"] = (
            OPENMETRICS_CONTENT_TYPE if openmetrics else TEXT_CONTENT_TYPE
        )
        if gzip:
            response.headers["Content-Encoding"] = "gzip"
        await response.prepare(request)
        sender = _Sender(
            response, zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31) if gzip else None
        )
        pending: list[str] = []
        size = 0
        for chunk in chunks:
            pending.append(chunk)
            size += len(chunk)
            if size >= WRITE_BYTES:
                await sender.send("".join(pending).encode())
                pending, size = [], 0
        await sender.send("".join(pending).encode())
        await sender.close()
        return response

    async def _whole_page(self, exchange: Exchange, openmetrics: bool, tenant: str | None) -> str:
        """Under `--workers N`: this worker's page and every other worker's, merged per family
        (each metric's series live in one worker); `UnavailableError` when one cannot answer."""
        question = json.dumps({"openmetrics": openmetrics, "tenant": tenant}).encode()
        theirs = await exchange.ask_peers(self._topic, question)
        pages = [self._local_page(openmetrics, tenant), *(page.decode() for page in theirs)]
        return merge_pages(pages, openmetrics)

    @property
    def _topic(self) -> str:
        return f"prometheus/{self.component_id}"

    def _local_page(self, openmetrics: bool, tenant: str | None) -> str:
        return "".join(
            render(
                self.store,
                openmetrics=openmetrics,
                timestamps=self.config.send_timestamps,
                tenant=tenant,
            )
        )


class _Page:
    """The scrape route's handler: serves whichever exporter owns the page (a hot reload that
    rebuilds the exporter hands the page and its listener to the new one); under `--workers N`
    it also answers the other workers' requests for this worker's part."""

    __slots__ = ("exporter",)

    def __init__(self, exporter: PrometheusExporter) -> None:
        self.exporter = exporter

    async def scrape(self, request: web.Request) -> web.StreamResponse:
        return await self.exporter._scrape(request)

    async def part(self, question: bytes) -> bytes:
        asked = json.loads(question)
        return self.exporter._local_page(bool(asked["openmetrics"]), asked["tenant"]).encode()


_PAGE_KEYS: Final = frozenset({*HttpListenerSettings.model_fields, "endpoint", "path"})
_NOT_SERIES_KEYS: Final = _PAGE_KEYS | {"metric_expiration", "sending_queue", "retry_on_failure"}


def _page_keys(config: PrometheusExporterConfig) -> dict[str, object]:
    """What the listening socket and the page's route depend on."""
    return {key: getattr(config, key) for key in sorted(_PAGE_KEYS)}


def _series_keys(config: PrometheusExporterConfig) -> dict[str, object]:
    """What the stored series depend on: how they are translated and what is kept of them."""
    fields = type(config).model_fields
    return {key: getattr(config, key) for key in sorted(fields) if key not in _NOT_SERIES_KEYS}


class _Sender:
    """Writes encoded chunks, compressing each in a worker thread while the next one renders."""

    def __init__(self, response: web.StreamResponse, compressor: zlib._Compress | None) -> None:
        self._response = response
        self._compressor = compressor
        self._pending: asyncio.Future[bytes] | None = None

    async def send(self, data: bytes) -> None:
        if self._compressor is None:
            await self._response.write(data)
            await asyncio.sleep(0)
            return
        await self._drain()
        loop = asyncio.get_running_loop()
        self._pending = loop.run_in_executor(None, self._compressor.compress, data)

    async def close(self) -> None:
        if self._compressor is not None:
            await self._drain()
            await self._response.write(self._compressor.flush())
        await self._response.write_eof()

    async def _drain(self) -> None:
        if self._pending is not None:
            compressed = await self._pending
            self._pending = None
            if compressed:
                await self._response.write(compressed)


FACTORY = exporter_factory(
    "prometheus",
    PrometheusExporterConfig,
    PrometheusExporter,
    "serves the pipeline's metrics as a Prometheus / OpenMetrics scrape page",
)
