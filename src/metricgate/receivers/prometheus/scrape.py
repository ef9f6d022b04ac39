"""One target's scrape loop: fetch, parse, convert, staleness, the `up` series, deliver.

Each scrape, as Prometheus does it:
- starts at `offset + k * interval` on the absolute time grid (the offset is a hash of the target,
  so a job's targets spread over the interval), and samples without a timestamp of their own get
  the scrape's start time;
- GETs the URL with Prometheus' `Accept` header, gzip, `X-Prometheus-Scrape-Timeout-Seconds`, the
  job's credentials, within the timeout (plain HTTP on the target's kept-alive connection, read
  off the socket by `fetch.PageFetcher`; https, and redirects to follow, through aiohttp); the
  body (decompressed) may not exceed the job's `body_size_limit` (or the receiver's
  `max_scrape_size`);
- parses it by `Content-Type` (text 0.0.4 for a blank or unknown type, OpenMetrics, delimited
  protobuf) with this target's own parsers, so known series cost a dict lookup;
- fails as a whole on any error (HTTP status, timeout, parse error with its line, a limit): no
  samples, `up` 0, the error recorded for /debug/targets;
- ends every series of the previous scrape that this one lacks (all of them after a failure) with
  a staleness point stamped at this scrape's start;
- adds `up`, `scrape_duration_seconds`, `scrape_samples_scraped`,
  `scrape_samples_post_metric_relabeling` and `scrape_series_added` with the target's labels.

A scrape that the pipeline refuses (back-pressure) is lost and counted; the next one carries on.

Invariant: `previous` always holds exactly the series delivered by the last scrape and not yet
ended, so every series that stops gets exactly one staleness point.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import aiohttp

from metricgate import __version__
from metricgate.errors import ConsumeError
from metricgate.model import (
    FLAG_NO_RECORDED_VALUE,
    INTERNER,
    Batch,
    Metric,
    MetricKind,
    MetricPoints,
    Series,
)
from metricgate.receivers.prometheus.config import ScrapeConfig
from metricgate.receivers.prometheus.deliver import Coalescer
from metricgate.receivers.prometheus.fetch import (
    PageFetcher,
    ScrapeError,
    Unhandled,
    status_error,
    too_big,
)
from metricgate.receivers.prometheus.targets import LimitError, Target, sample_labels
from metricgate.relabel import RuleSet
from metricgate.translate.exposition import PageConverter
from metricgate.wire.exposition import (
    SCRAPE_ACCEPT,
    ExpositionError,
    Page,
    TextParser,
    format_of,
    parse_protobuf,
)

log = logging.getLogger("metricgate.receivers.prometheus")

USER_AGENT: Final = f"metricgate/{__version__}"
_AUTO: Final = (
    ("up", "Health of the target's last scrape: 1 up, 0 down."),
    ("scrape_duration_seconds", "Duration of the last scrape."),
    ("scrape_samples_scraped", "Samples the target exposed in the last scrape."),
    ("scrape_samples_post_metric_relabeling", "Samples left after metric relabeling."),
    ("scrape_series_added", "Series in the last scrape that the previous one lacked."),
)


@dataclass(slots=True)
class Health:
    """What /debug/targets shows about a target's last scrape."""

    state: str = "unknown"
    last_scrape: float = 0.0
    duration: float = 0.0
    error: str = ""
    samples: int = 0


@dataclass(slots=True)
class JobContext:
    """What every loop of one job shares."""

    receiver_id: str
    session: aiohttp.ClientSession
    consumer: Coalescer
    metric_rules: RuleSet
    config: ScrapeConfig
    max_body: int
    """The largest page taken (the job's `body_size_limit`, else the receiver's)."""
    on_scrape: Callable[[str, str, int], None]
    """Called as `on_scrape(job, reason, points)` after every scrape (reason "" on success,
    points delivered)."""
    auto_metrics: dict[str, Metric] = field(default_factory=dict)


class ScrapeLoop:
    """Scrapes one target every interval until cancelled (see the module docstring)."""

    def __init__(self, target: Target, context: JobContext, previous: set[Series]) -> None:
        self.target = target
        self.context = context
        self.health = Health()
        self.previous = previous
        self._parsers: dict[str, TextParser] = {}
        self._shape: object = None
        """`Page.shape` of the last successful scrape."""
        job = context.config
        self._honor_timestamps = job.honor_timestamps
        self._sample_limit = job.sample_limit
        self._converter = PageConverter(
            INTERNER.intern_resource(()),
            INTERNER.intern_scope("metricgate/prometheus"),
            sample_labels(target, job, context.metric_rules),
        )
        self._auto_series = {
            name: INTERNER.intern_series(_auto_metric(context, name, text), target.labels)
            for name, text in _AUTO
        }
        self._headers = {
            "Accept": SCRAPE_ACCEPT,
            "Accept-Encoding": "gzip",
            "User-Agent": USER_AGENT,
            "X-Prometheus-Scrape-Timeout-Seconds": f"{target.timeout:g}",
        }
        self._fetcher = (
            PageFetcher(target.url, self._headers, job.follow_redirects)
            if target.url.startswith("http://")
            else None
        )
        """Plain-HTTP pages are read off the socket (`fetch.py`); https ones through aiohttp."""

    def offset(self, seed: int = 0) -> float:
        """Where in each interval this target is scraped: a hash of it, so targets spread."""
        interval_ms = max(1, int(self.target.interval * 1000))
        return ((int(self.target.key, 16) ^ seed) % interval_ms) / 1000

    async def run(self) -> None:
        interval = self.target.interval
        offset = self.offset()
        now = time.time()
        start = math.floor(now / interval) * interval + offset
        if start < now:
            start += interval
        try:
            while True:
                await asyncio.sleep(max(0.0, start - time.time()))
                await self.scrape(start)
                start += interval
                now = time.time()
                if start < now:  # a scrape overran: skip the missed slots, as Prometheus does
                    start += math.ceil((now - start) / interval) * interval
        finally:
            if self._fetcher is not None:
                self._fetcher.close()

    async def scrape(self, start: float) -> None:
        """One scrape stamped `start` (Unix seconds), delivered to the pipeline."""
        started = time.monotonic()
        now_ns = int(start * 1e9)
        groups: list[MetricPoints] = []
        scraped = kept = 0
        reason = error = ""
        same = False
        try:
            page = await self._fetch()
            scraped = len(page)
            converted = self._converter.convert(page, now_ns, self._honor_timestamps)
            kept = converted.samples
            limit = self._sample_limit
            if limit and kept > limit:
                raise ScrapeError("sample_limit", f"sample limit exceeded ({kept} > {limit})")
            groups = converted.groups
            # The same page shape as the last successful scrape: the same series.
            same = converted.replayed and page.shape is self._shape
            self._shape = page.shape
        except ScrapeError as exc:
            reason, error = exc.reason, str(exc)
        except ExpositionError as exc:
            reason, error = "parse", str(exc)
        except LimitError as exc:
            reason, error = "label_limit", str(exc)
        if reason:
            self._shape = None
        duration = time.monotonic() - started
        if same:
            current, batch, added = self.previous, Batch(list(groups)), 0
        else:
            current = {series for group in groups for series in group.series}
            batch = Batch(stale_points(self.previous - current, now_ns))
            batch.metrics.extend(groups)
            added = len(current - self.previous)
        batch.metrics.extend(self._auto(now_ns, not reason, duration, scraped, kept, added))
        self.previous = current
        health = self.health
        health.last_scrape, health.duration, health.samples = start, duration, kept
        health.state = "down" if reason else "up"
        health.error = error
        if reason:
            log.debug("scrape failed", extra={"target": self.target.url, "error": error})
        refused = await self._deliver(batch)
        delivered = 0 if refused else batch.point_count()
        self.context.on_scrape(self.target.job, refused or reason, delivered)

    async def _fetch(self) -> Page:
        context, target = self.context, self.target
        authorization = context.config.authorization_header() or ""
        limit = context.max_body
        try:
            async with asyncio.timeout(target.timeout):
                fetcher = self._fetcher
                if fetcher is not None:
                    try:
                        body, content_type = await fetcher.get(limit, authorization)
                    except Unhandled:
                        fetcher.close()
                        self._fetcher = None  # a redirect to follow: aiohttp from now on
                        body, content_type = await self._fetch_aiohttp(authorization, limit)
                else:
                    body, content_type = await self._fetch_aiohttp(authorization, limit)
        except TimeoutError:
            raise ScrapeError("timeout", f"scrape timed out after {target.timeout:g}s") from None
        except (aiohttp.ClientError, OSError, zlib.error) as exc:
            raise ScrapeError("connection", f"scrape failed: {exc!r}") from None
        page_format = format_of(content_type)
        if page_format is None:
            raise ScrapeError("content_type", f"unsupported Content-Type {content_type!r}")
        if page_format == "protobuf":
            return parse_protobuf(body)
        parser = self._parsers.get(page_format)
        if parser is None:
            parser = self._parsers[page_format] = TextParser(
                openmetrics=page_format == "openmetrics"
            )
        try:
            text = body.decode()
        except UnicodeDecodeError as exc:
            raise ScrapeError("parse", f"body is not UTF-8: {exc}") from None
        return parser.parse(text)

    async def _fetch_aiohttp(self, authorization: str, limit: int) -> tuple[bytes, str]:
        """The page through aiohttp: https targets, and redirects to follow."""
        headers = self._headers
        if authorization:
            headers = {**headers, "Authorization": authorization}
        async with self.context.session.get(
            self.target.url, headers=headers, allow_redirects=self.context.config.follow_redirects
        ) as response:
            if response.status != 200:
                raise status_error(response.status, response.reason or "")
            chunks = []
            size = 0
            async for chunk in response.content.iter_chunked(1 << 16):
                size += len(chunk)
                if size > limit:
                    raise too_big(limit)
                chunks.append(chunk)
            return b"".join(chunks), response.headers.get("Content-Type", "")

    def _auto(
        self, now_ns: int, up: bool, duration: float, scraped: int, kept: int, added: int
    ) -> list[MetricPoints]:
        values = (1.0 if up else 0.0, duration, float(scraped), float(kept), float(added))
        out = []
        for (name, _), value in zip(_AUTO, values, strict=True):
            series = self._auto_series[name]
            group = MetricPoints(series.metric)
            group.append(series, value, now_ns)
            out.append(group)
        return out

    async def _deliver(self, batch: Batch) -> str:
        try:
            await self.context.consumer.deliver(batch)
        except ConsumeError as exc:
            log.warning(
                "scrape refused by the pipeline, its samples are lost: %s",
                exc,
                extra={"receiver": self.context.receiver_id, "target": self.target.url},
            )
            return "pipeline"
        return ""


def stale_points(gone: set[Series], now_ns: int) -> list[MetricPoints]:
    """A staleness point for each series of `gone`, grouped by metric."""
    groups: dict[Metric, MetricPoints] = {}
    for series in gone:
        group = groups.get(series.metric)
        if group is None:
            group = groups[series.metric] = MetricPoints(series.metric)
        group.append(series, math.nan, now_ns, 0, FLAG_NO_RECORDED_VALUE)
    return list(groups.values())


def _auto_metric(context: JobContext, name: str, help_text: str) -> Metric:
    metric = context.auto_metrics.get(name)
    if metric is None:
        metric = context.auto_metrics[name] = INTERNER.intern_metric(
            INTERNER.intern_resource(()),
            INTERNER.intern_scope("metricgate/prometheus"),
            name,
            "",
            MetricKind.GAUGE,
            description=help_text,
            native_prometheus=True,
        )
    return metric
