"""The `loadbalancing` exporter component: split each batch by member and send the parts.

Every point is routed by its routing key (`routing.py`) on the consistent-hash ring (`ring.py`)
built from the resolver's members (`resolver.py`); the member of each `Series` (or `Metric`, for
per-metric keys) is cached until the ring changes, so in steady state routing a point is one dict
lookup. Each member has its own `OtlpExporter` (the `otlp` exporter's encoder and transport), and
the parts go out concurrently.

Partial failure: parts that fail retryably are kept as owed for this batch and the whole call
raises `RetryableError`, so the queue backs off and calls again with the same batch; the next call
sends only the owed parts, routed again on the current ring (a member that left meanwhile has its
parts re-routed, nothing is sent twice to a member that accepted it). Parts a member refuses
permanently are dropped and logged; when nothing is owed the call then raises `PermanentError`.
As in the datadog exporter, at most `2 * num_consumers` batches keep owed parts.

Invariant: a part a member accepted is never sent again for the same batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from typing import Final

from metricgate.errors import PermanentError, RetryableError
from metricgate.exporters.loadbalancing.config import LoadBalancingExporterConfig
from metricgate.exporters.loadbalancing.resolver import DnsResolver, Resolver, StaticResolver
from metricgate.exporters.loadbalancing.ring import HashRing
from metricgate.exporters.loadbalancing.routing import router
from metricgate.exporters.otlp import OtlpExporter
from metricgate.model import Batch, Metric, MetricPoints, Series
from metricgate.pipeline.component import Consumer, Exporter
from metricgate.pipeline.host import Host
from metricgate.pipeline.registry import Factory, Kind

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
        self._routes: dict[Metric | Series, str] = {}
        self._owed: OrderedDict[int, tuple[Batch, list[Batch]]] = OrderedDict()
        self._max_owed = 2 * config.sending_queue.num_consumers
        self._retiring: set[asyncio.Task[None]] = set()
        self._host: Host | None = None

    async def start(self, host: Host) -> None:
        self._host = host
        await self.resolver.start(self.set_members)

    async def set_members(self, members: list[str]) -> None:
        """Rebuild the ring for `members`: start exporters for new ones, retire departed ones."""
        assert self._host is not None
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
        self.ring = HashRing(self.members)
        self._routes = {}
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

    async def export(self, batch: Batch) -> None:
        if not batch:
            return
        found = self._owed.get(id(batch))
        pending = found[1] if found is not None and found[0] is batch else [batch]
        if self.ring is None:
            raise RetryableError(f"{self.component_id}: no members resolved yet", 1.0)
        parts = self.split(pending)
        members = self.members
        results = await asyncio.gather(
            *(members[member].export(part) for member, part in parts.items()),
            return_exceptions=True,
        )
        owed: list[Batch] = []
        retry: RetryableError | None = None
        refused: list[str] = []
        for (member, part), result in zip(parts.items(), results, strict=True):
            if result is None:
                continue
            if isinstance(result, PermanentError):
                log.error(
                    "member refused a part permanently; dropped",
                    extra={
                        "exporter": self.component_id,
                        "member": member,
                        "points": part.point_count(),
                        "error": str(result),
                    },
                )
                refused.append(f"{member}: {result}")
                continue
            owed.append(part)
            wait = result.retry_after if isinstance(result, RetryableError) else 0.0
            if retry is None or wait > retry.retry_after:
                retry = RetryableError(f"{member}: {type(result).__name__}: {result}", wait)
        if retry is not None:
            self._owed[id(batch)] = (batch, owed)
            self._owed.move_to_end(id(batch))
            while len(self._owed) > self._max_owed:
                self._owed.popitem(last=False)
            raise RetryableError(
                f"{len(owed)} of {len(parts)} members failed; first: {retry}", retry.retry_after
            )
        self._owed.pop(id(batch), None)
        if refused:
            raise PermanentError(f"{len(refused)} of {len(parts)} parts refused: {refused[0]}")

    async def shutdown(self) -> None:
        await self.resolver.shutdown()
        for task in list(self._retiring):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        members, self.members = self.members, {}
        self.ring = None
        for exporter in members.values():
            await exporter.shutdown()


def _create(
    component_id: str, config: LoadBalancingExporterConfig, _: Consumer | None
) -> LoadBalancingExporter:
    return LoadBalancingExporter(component_id, config)


FACTORY = Factory(
    "loadbalancing",
    Kind.EXPORTER,
    LoadBalancingExporterConfig,
    _create,
    "routes each series to one of N OTLP members by consistent hashing",
)
