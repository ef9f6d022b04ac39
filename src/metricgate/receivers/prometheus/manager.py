"""One job's targets: discovery updates in, one scrape loop per target, staleness when one goes.

`JobManager` runs the job's discoverers (`metricgate.discovery.discoverers`), keeps their latest
groups by `source` (a group with no targets removes its source) and, after every update, rebuilds
the target list (`targets.build_targets`): a target whose key is unchanged keeps its loop, a new
one gets a loop, a vanished one is stopped and, as in Prometheus, its series are ended with
staleness points stamped at its first missed scrape, sent 2 intervals (+10 %) after that unless
the same target came back in between. Over `target_limit` targets, none is scraped and each shows
the error. Shutdown sends no staleness points (a restarted gateway carries on the series).

Under `--workers N` each worker scrapes the targets it owns (`role.owner` of the target key),
so a set scrapes each target once, as vmagent's `-promscrape.cluster.*` members share theirs.

Invariant: at most one scrape loop runs per target key (in a set of workers: in the set).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

import aiohttp

from metricgate import role
from metricgate.discovery import SendGroups, TargetGroup, discoverers
from metricgate.model import Batch, Series
from metricgate.pipeline.component import Consumer
from metricgate.receivers.prometheus.config import GlobalConfig, ScrapeConfig
from metricgate.receivers.prometheus.deliver import Coalescer
from metricgate.receivers.prometheus.scrape import Health, JobContext, ScrapeLoop, stale_points
from metricgate.receivers.prometheus.targets import DroppedTarget, Target, build_targets
from metricgate.receivers.prometheus.telemetry import ScrapeMetrics
from metricgate.relabel import RuleSet
from metricgate.telemetry.metrics import SelfMetrics

log = logging.getLogger("metricgate.receivers.prometheus")

_STALE_DELAY = 2.2
"""Intervals after a vanished target's first missed scrape before its series are ended."""


class JobManager:
    """The targets and scrape loops of one `scrape_configs` entry."""

    def __init__(
        self,
        receiver_id: str,
        job: ScrapeConfig,
        defaults: GlobalConfig,
        consumer: Consumer,
        coalescer: Coalescer,
        max_scrape_size: int,
        telemetry: SelfMetrics,
    ) -> None:
        self.receiver_id = receiver_id
        self.job = job
        self.defaults = defaults
        self.consumer = consumer
        self.coalescer = coalescer
        self.max_body = job.body_size_limit or max_scrape_size
        self.metrics = ScrapeMetrics(telemetry)
        self.target_rules = RuleSet(job.relabel_configs)
        self.metric_rules = RuleSet(job.metric_relabel_configs)
        self.groups: dict[str, TargetGroup] = {}
        self.loops: dict[str, tuple[ScrapeLoop, asyncio.Task[None]]] = {}
        self.targets: list[Target] = []
        self.dropped: list[DroppedTarget] = []
        self.limit_error = ""
        self._ending: dict[str, tuple[set[Series], asyncio.Task[None]]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._context: JobContext | None = None

    async def start(self) -> None:
        job = self.job
        ssl_context = job.tls_config.ssl_context() if job.scheme == "https" else None
        # Keep connections across scrapes (aiohttp closes idle ones after 15 s by default, which
        # at a 15 s interval means a new connection for nearly every scrape).
        idle = 2 * max(job.interval(self.defaults), job.timeout(self.defaults)) + 10
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                ssl=ssl_context or True, limit=0, keepalive_timeout=idle
            ),
            auto_decompress=True,
        )
        self._context = JobContext(
            self.receiver_id,
            session,
            self.coalescer,
            self.metric_rules,
            job,
            self.max_body,
            self._on_scrape,
        )
        for discoverer in discoverers(job, job.job_name, self._on_refresh):
            self._tasks.append(asyncio.create_task(self._discover(discoverer.run)))

    async def _discover(self, run: Callable[[SendGroups], Awaitable[None]]) -> None:
        try:
            await run(self.update)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("service discovery stopped", extra={"job": self.job.job_name})

    def update(self, groups: list[TargetGroup]) -> None:
        """Take a discoverer's groups (see the module docstring)."""
        for group in groups:
            if group.targets:
                self.groups[group.source] = group
            else:
                self.groups.pop(group.source, None)
        self._sync()

    def _sync(self) -> None:
        targets, self.dropped = build_targets(
            list(self.groups.values()), self.job, self.defaults, self.target_rules
        )
        limit = self.job.target_limit
        self.limit_error = ""
        if limit and len(targets) > limit:
            self.limit_error = (
                f"target_limit exceeded (number of targets: {len(targets)}, limit: {limit})"
            )
            log.warning(self.limit_error, extra={"job": self.job.job_name})
            self._on_scrape(self.job.job_name, "target_limit")
            keep: list[Target] = []
        else:
            keep = targets
        self.targets = targets
        wanted = {target.key: target for target in keep if _owned(target)}
        for key in [key for key in self.loops if key not in wanted]:
            self._retire(key)
        for key, target in wanted.items():
            if key not in self.loops:
                self._launch(target)

    def _launch(self, target: Target) -> None:
        assert self._context is not None
        previous: set[Series] = set()
        ending = self._ending.pop(target.key, None)
        if ending is not None:
            previous, task = ending
            task.cancel()
        loop = ScrapeLoop(target, self._context, previous)
        self.loops[target.key] = (loop, asyncio.create_task(loop.run()))

    def _retire(self, key: str) -> None:
        loop, task = self.loops.pop(key)
        task.cancel()
        interval = loop.target.interval
        last = loop.health.last_scrape
        # In ns as the scrape stamped its points, so the marker lands exactly one interval on.
        missed = int(last * 1e9) + round(interval * 1e9) if last else time.time_ns()
        ending = asyncio.create_task(self._end(loop.previous, missed, interval))
        self._ending[key] = (loop.previous, ending)
        ending.add_done_callback(lambda _: self._ending.pop(key, None))

    async def _end(self, series: set[Series], missed: int, interval: float) -> None:
        await asyncio.sleep(max(0.0, missed / 1e9 + _STALE_DELAY * interval - time.time()))
        if not series:
            return
        try:
            await self.consumer.consume(Batch(stale_points(series, missed)))
        except Exception as exc:
            log.warning("staleness points of a vanished target refused: %s", exc)

    def health(self) -> list[tuple[Target, Health]]:
        """Every current target this worker owns (every one, outside a `--workers N` set),
        with its last scrape."""
        out = []
        for target in self.targets:
            if not _owned(target):
                continue
            found = self.loops.get(target.key)
            health = found[0].health if found else Health(error=self.limit_error)
            out.append((target, health))
        return out

    def _on_scrape(self, job: str, reason: str, points: int = 0) -> None:
        metrics = self.metrics
        metrics.scrapes.labels(self.receiver_id, job).inc()
        if points:
            metrics.accepted.labels(self.receiver_id, "scrape").inc(points)
        if reason:
            metrics.scrape_failures.labels(self.receiver_id, job, reason).inc()

    def _on_refresh(self, mechanism: str, failed: bool) -> None:
        labels = (self.receiver_id, self.job.job_name, mechanism)
        self.metrics.discovery_refreshes.labels(*labels).inc()
        if failed:
            self.metrics.discovery_failures.labels(*labels).inc()

    async def stop(self) -> None:
        tasks = [*self._tasks, *(task for _, task in self.loops.values())]
        tasks += [task for _, task in self._ending.values()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.loops.clear()
        if self._context is not None:
            await self._context.session.close()


def _owned(target: Target) -> bool:
    """Whether this worker scrapes `target` (each target has one owner in a set of workers)."""
    place = role.CURRENT
    return role.owner(target.key, place.count) == place.index
