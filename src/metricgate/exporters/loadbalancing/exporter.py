"""The `loadbalancing` exporter component: split each batch by member and send the parts.

Every point is routed by its routing key (`routing.py`) on the consistent-hash ring (`ring.py`)
built from the resolver's members (`resolver.py`); the member of each `Series` (or `Metric`, for
per-metric keys) is cached until the ring changes, so in steady state routing a point is one dict
lookup. Each member has its own `OtlpExporter` (the `otlp` exporter's encoder and transport), and
the parts go out concurrently.

Partial failure: when some members' parts fail retryably, `export` raises `PartialExportError`
whose remainder is those parts' points (a plain batch): the sending core retries only that, and
the retry routes it again on the current ring (a member that left meanwhile has its parts
re-routed; nothing is sent twice to a member that accepted it). Parts a member refuses
permanently are dropped and counted; with nothing owed, the call then raises `PermanentError`.

Own telemetry (`telemetry.py`): each part's points, outcome and send duration are recorded on its
member's pre-bound children, once per part (never per point); members leaving the ring take their
series with them. Health changes and ring changes are logged once each, not per batch.

Invariant: a part a member accepted is never sent again for the same batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Final

from metricgate.errors import PartialExportError, PermanentError, RetryableError
from metricgate.exporters.loadbalancing.config import LoadBalancingExporterConfig
from metricgate.exporters.loadbalancing.resolver import DnsResolver, Resolver, StaticResolver
from metricgate.exporters.loadbalancing.ring import HashRing
from metricgate.exporters.loadbalancing.routing import router
from metricgate.exporters.loadbalancing.telemetry import (
    LoadBalancingMetrics,
    MemberStats,
)
from metricgate.exporters.otlp import OtlpExporter
from metricgate.model import Batch, Metric, MetricPoints, Series
from metricgate.pipeline.component import Exporter
from metricgate.pipeline.host import Host
from metricgate.pipeline.registry import exporter_factory

log = logging.getLogger("metricgate.exporters.loadbalancing")

MAX_CACHED_ROUTES: Final = 1_000_000
"""The route cache forgets everything past this many series (as the model's interner does)."""


class LoadBalancingExporter(Exporter):
    """Routes series to OTLP members by consistent hashing (see module docstring)."""

    def __init__(
        self,
        component_id: str,
        config: LoadBalancingExporterConfig,
        resolver: Resolver | None = None,
    ) -> None:
        super().__init__(component_id)
        self.config = config
        self.router = router(config.routing_key, config.routing_attributes)
        if resolver is None:
            static, dns = config.resolver.static, config.resolver.dns
            if static is not None:
                resolver = StaticResolver(static.hostnames)
            else:
                assert dns is not None
                resolver = DnsResolver(dns)
        self.resolver = resolver
        self.ring: HashRing | None = None
        self.members: dict[str, OtlpExporter] = {}
        self.stats: dict[str, MemberStats] = {}
        """Each member's telemetry; the same keys as `members`."""
        self._metrics: LoadBalancingMetrics | None = None
        self._unobserve: Callable[[], None] | None = None
        self._routes: dict[Metric | Series, str] = {}
        self._retiring: set[asyncio.Task[None]] = set()
        self._host: Host | None = None

    async def start(self, host: Host) -> None:
        self._host = host
        metrics = self._metrics = LoadBalancingMetrics(host.telemetry)
        self._unobserve = metrics.observe(self.component_id, self._stats_view)
        resolutions = metrics.resolutions
        exporter_id, resolver_name = self.component_id, self.resolver.name

        def on_resolve(outcome: str) -> None:
            resolutions.labels(exporter_id, resolver_name, outcome).inc()

        await self.resolver.start(self.set_members, on_resolve)

    async def set_members(self, members: list[str]) -> None:
        """Rebuild the ring for `members`: start exporters for new ones, retire departed ones."""
        assert self._host is not None and self._metrics is not None
        previous = set(self.members)
        wanted = set(members)
        if wanted == previous:
            return
        started: dict[str, OtlpExporter] = {}
        for address in sorted(wanted - previous):
            exporter = OtlpExporter(
                f"{self.component_id}/{address}", self.config.member_config(address)
            )
            await exporter.start(self._host)
            started[address] = exporter
        # No await from here on: the ring, the cache and the exporters change together.
        self.members.update(started)
        retired = [self.members.pop(address) for address in sorted(previous - wanted)]
        for address in started:
            self.stats[address] = MemberStats(self._metrics, self.component_id, address)
        for address in previous - wanted:
            self.stats.pop(address).drop()
        self.ring = HashRing(self.members)
        self._routes = {}
        self._metrics.ring_changes.labels(self.component_id).inc()
        log.info(
            "loadbalancing members changed",
            extra={
                "exporter": self.component_id,
                "members": sorted(self.members),
                "added": sorted(started),
                "removed": sorted(previous - wanted),
            },
        )
        for exporter in retired:
            task = asyncio.create_task(self._retire(exporter))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)

    async def _retire(self, exporter: OtlpExporter) -> None:
        """Close a departed member once any attempt in flight has had its full timeout."""
        try:
            await asyncio.sleep(exporter.config.timeout)
        finally:
            await exporter.shutdown()

    def split(self, batches: list[Batch]) -> dict[str, Batch]:
        """The points of `batches`, grouped by the member that owns each (needs a ring)."""
        ring = self.ring
        assert ring is not None
        routes = self._routes
        per_metric, per_series = self.router.per_metric, self.router.per_series
        out: dict[str, list[MetricPoints]] = {}
        for batch in batches:
            for group in batch.metrics:
                if not group.series:
                    continue
                if per_metric is not None:
                    member = routes.get(group.metric)
                    if member is None:
                        member = routes[group.metric] = ring.lookup(per_metric(group.metric))
                    out.setdefault(member, []).append(group)
                    continue
                assert per_series is not None
                indexes: dict[str, list[int]] = {}
                for i, series in enumerate(group.series):
                    member = routes.get(series)
                    if member is None:
                        member = routes[series] = ring.lookup(per_series(series))
                    found = indexes.get(member)
                    if found is None:
                        indexes[member] = [i]
                    else:
                        found.append(i)
                if len(indexes) == 1:
                    out.setdefault(next(iter(indexes)), []).append(group)
                else:
                    for member, chosen in indexes.items():
                        out.setdefault(member, []).append(group.select(chosen))
        if len(routes) > MAX_CACHED_ROUTES:
            routes.clear()
        return {member: Batch(groups) for member, groups in out.items()}

    async def export(self, batch: Batch) -> int | None:
        if not batch:
            return None
        if self.ring is None:
            raise RetryableError(f"{self.component_id}: no members resolved yet", 1.0)
        parts = self.split([batch])
        members = self.members
        # A member may leave the ring while its part is in flight: take its stats now.
        stats = [self.stats[member] for member in parts]
        results = await asyncio.gather(
            *(
                self._send(members[member], member_stats, part)
                for (member, part), member_stats in zip(parts.items(), stats, strict=True)
            ),
            return_exceptions=True,
        )
        delivered = refused = 0
        owed: list[Batch] = []
        retry: RetryableError | None = None
        permanent: list[str] = []
        for (member, part), member_stats, result in zip(parts.items(), stats, results, strict=True):
            points = part.point_count()
            if result is None or isinstance(result, int):
                accepted = points if result is None else result
                member_stats.succeeded(accepted)
                delivered += accepted
                continue
            if isinstance(result, PermanentError):
                lost = points - result.delivered if result.refused is None else result.refused
                if result.delivered:
                    member_stats.succeeded(result.delivered)
                member_stats.failed(lost, True, result)
                delivered += result.delivered
                refused += lost
                permanent.append(f"{member}: {result}")
                continue
            member_stats.failed(points, False, result)
            owed.append(part)
            wait = result.retry_after if isinstance(result, RetryableError) else 0.0
            if retry is None or wait > retry.retry_after:
                retry = RetryableError(f"{member}: {type(result).__name__}: {result}", wait)
        if retry is not None:
            raise PartialExportError(
                f"{len(owed)} of {len(parts)} members failed; first: {retry}",
                merge(owed),
                delivered=delivered,
                refused=refused,
                retry_after=retry.retry_after,
            )
        if permanent:
            raise PermanentError(
                f"{len(permanent)} of {len(parts)} parts refused: {permanent[0]}",
                refused=refused,
                delivered=delivered,
            )
        return delivered

    def _stats_view(self) -> dict[str, MemberStats]:
        return self.stats

    @staticmethod
    async def _send(exporter: OtlpExporter, stats: MemberStats, part: Batch) -> int | None:
        start = time.perf_counter()
        try:
            return await exporter.export(part)
        finally:
            stats.latency.observe(time.perf_counter() - start)

    async def shutdown(self) -> None:
        await self.resolver.shutdown()
        for task in list(self._retiring):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        members, self.members = self.members, {}
        self.ring = None
        if self._unobserve is not None:
            self._unobserve()
            self._unobserve = None
        for member_stats in self.stats.values():
            member_stats.drop()
        self.stats = {}
        for exporter in members.values():
            await exporter.shutdown()


def merge(parts: list[Batch]) -> Batch:
    """One batch of `parts` split from one batch, with one group per metric as a batch must."""
    by_metric: dict[Metric, list[MetricPoints]] = {}
    for part in parts:
        for group in part.metrics:
            by_metric.setdefault(group.metric, []).append(group)
    out: list[MetricPoints] = []
    for metric, groups in by_metric.items():
        if len(groups) == 1:
            out.append(groups[0])
            continue
        merged = MetricPoints(metric)
        for group in groups:
            offset = len(merged)
            merged.series.extend(group.series)
            merged.values.extend(group.values)
            merged.timestamps.extend(group.timestamps)
            merged.start_timestamps.extend(group.start_timestamps)
            merged.flags.extend(group.flags)
            for index, exemplars in (group.exemplars or {}).items():
                merged.add_exemplars(offset + index, exemplars)
        out.append(merged)
    return Batch(out)


FACTORY = exporter_factory(
    "loadbalancing",
    LoadBalancingExporterConfig,
    LoadBalancingExporter,
    "routes each series to one of N OTLP members by consistent hashing",
)
