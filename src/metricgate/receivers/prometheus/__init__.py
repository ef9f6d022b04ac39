"""The `prometheus` receiver: scrapes targets with Prometheus' own `scrape_configs`.

Modules: `config` (Prometheus' `global` and `scrape_configs`), `targets` (target labels, URL and
identity; per-sample labels), `scrape` (one target's loop), `deliver` (scrapes handed on together),
`manager` (one job: discovery updates, loops, staleness of vanished targets), `debug`
(`/debug/targets`). Pages are parsed by
`metricgate.wire.exposition` and turned into points by `metricgate.receivers.exposition`, as the
`pushgateway` receiver's pushes are; relabeling is `metricgate.relabel`'s engine.

Invariant: `start()` returns once every job's discovery is running (scrapes begin at each target's
offset in its interval); `shutdown()` stops every loop, sends no staleness points and is
idempotent.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterator

from metricgate.pipeline.component import Consumer, Receiver
from metricgate.pipeline.host import Host
from metricgate.pipeline.registry import receiver_factory
from metricgate.receivers.prometheus import debug
from metricgate.receivers.prometheus.config import (
    PrometheusConfig,
    PrometheusReceiverConfig,
    ScrapeConfig,
)
from metricgate.receivers.prometheus.deliver import Coalescer
from metricgate.receivers.prometheus.manager import JobManager

__all__ = [
    "FACTORY",
    "JobManager",
    "PrometheusConfig",
    "PrometheusReceiver",
    "PrometheusReceiverConfig",
    "ScrapeConfig",
]

log = logging.getLogger("metricgate.receivers.prometheus")

_BY_HOST: weakref.WeakKeyDictionary[Host, list[PrometheusReceiver]] = weakref.WeakKeyDictionary()
"""The receivers of each gateway: one `/debug/targets` route per gateway lists them all."""


def _listing(receivers: list[PrometheusReceiver]) -> debug.Managers:
    def managers() -> Iterator[tuple[str, JobManager]]:
        for receiver in sorted(receivers, key=lambda r: r.component_id):
            for manager in receiver.managers:
                yield receiver.component_id, manager

    return managers


class PrometheusReceiver(Receiver):
    """Scrapes every job's targets and feeds the samples to the pipelines."""

    def __init__(
        self, component_id: str, config: PrometheusReceiverConfig, next_consumer: Consumer
    ) -> None:
        super().__init__(component_id, next_consumer)
        self.config = config
        self.managers: list[JobManager] = []
        self._receivers: list[PrometheusReceiver] = []

    async def start(self, host: Host) -> None:
        prometheus = self.config.config
        coalescer = Coalescer(self.next_consumer)
        for job in prometheus.scrape_configs:
            manager = JobManager(
                self.component_id,
                job,
                prometheus.global_,
                self.next_consumer,
                coalescer,
                self.config.max_scrape_size,
                host.telemetry,
            )
            self.managers.append(manager)
            await manager.start()
        receivers = _BY_HOST.get(host)
        if receivers is None:
            receivers = _BY_HOST[host] = []
            host.add_route("GET", "/debug/targets", debug.handler(_listing(receivers)))
        receivers.append(self)
        self._receivers = receivers
        host.telemetry.add_gauge(
            "metricgate_receiver_scrape_targets",
            "Targets of a prometheus receiver by job and health of their last scrape.",
            ["receiver", "job", "state"],
            self._target_counts,
        )
        log.info(
            "prometheus receiver started",
            extra={"receiver": self.component_id, "jobs": len(self.managers)},
        )

    def _target_counts(self) -> dict[tuple[str, ...], float]:
        counts: dict[tuple[str, ...], float] = {}
        for manager in self.managers:
            for state in ("up", "down", "unknown"):
                counts[(self.component_id, manager.job.job_name, state)] = 0.0
            for _, health in manager.health():
                key = (self.component_id, manager.job.job_name, health.state)
                counts[key] = counts.get(key, 0.0) + 1
        return counts

    async def shutdown(self) -> None:
        if self in self._receivers:
            self._receivers.remove(self)
        managers, self.managers = self.managers, []
        for manager in managers:
            await manager.stop()


FACTORY = receiver_factory(
    "prometheus",
    PrometheusReceiverConfig,
    PrometheusReceiver,
    "Scrapes Prometheus targets (scrape_configs with service discovery)",
)
