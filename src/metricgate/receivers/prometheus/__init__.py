"""The `prometheus` receiver: scrapes targets with Prometheus' own `scrape_configs`.

Modules: `config` (Prometheus' `global` and `scrape_configs`), `targets` (target labels, URL and
identity; per-sample labels), `scrape` (one target's loop), `deliver` (scrapes handed on together),
`manager` (one job: discovery updates, loops, staleness of vanished targets), `debug`
(`/debug/targets`), `telemetry` (the receiver's own metrics). Pages are parsed by
`metricgate.wire.exposition` and turned into points by `metricgate.translate.exposition`, as the
`pushgateway` receiver's pushes are; relabeling is `metricgate.relabel`'s engine.

Invariant: `start()` returns once every job's discovery is running (scrapes begin at each target's
offset in its interval); `shutdown()` stops every loop, sends no staleness points and is
idempotent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from metricgate.pipeline.component import Consumer, Receiver
from metricgate.pipeline.exchange import WholeView
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
from metricgate.receivers.prometheus.telemetry import ScrapeMetrics

__all__ = [
    "FACTORY",
    "JobManager",
    "PrometheusConfig",
    "PrometheusReceiver",
    "PrometheusReceiverConfig",
    "ScrapeConfig",
]

log = logging.getLogger("metricgate.receivers.prometheus")


class _Receivers:
    """The running receivers of one gateway, listed by its one `/debug/targets` route."""

    def __init__(self, host: Host) -> None:
        self.running: list[PrometheusReceiver] = []
        view = WholeView(
            host.exchange,
            "debug/targets",
            lambda _query: debug.targets_json(self.managers),
            debug.merge_targets,
        )
        host.add_route("GET", "/debug/targets", debug.handler(view.read))

    def managers(self) -> Iterator[tuple[str, JobManager]]:
        for receiver in sorted(self.running, key=lambda r: r.component_id):
            for manager in receiver.managers:
                yield receiver.component_id, manager


class PrometheusReceiver(Receiver):
    """Scrapes every job's targets and feeds the samples to the pipelines."""

    def __init__(
        self, component_id: str, config: PrometheusReceiverConfig, next_consumer: Consumer
    ) -> None:
        super().__init__(component_id, next_consumer)
        self.config = config
        self.managers: list[JobManager] = []
        self._receivers: _Receivers | None = None
        self._forget_targets: Callable[[], None] | None = None

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
        receivers = self._receivers = host.shared(_Receivers)
        receivers.running.append(self)
        self._forget_targets = ScrapeMetrics(host.telemetry).targets.observe(self._target_counts)
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
        if self._receivers is not None and self in self._receivers.running:
            self._receivers.running.remove(self)
        if self._forget_targets is not None:
            self._forget_targets()
            self._forget_targets = None
        managers, self.managers = self.managers, []
        for manager in managers:
            await manager.stop()


FACTORY = receiver_factory(
    "prometheus",
    PrometheusReceiverConfig,
    PrometheusReceiver,
    "Scrapes Prometheus targets (scrape_configs with service discovery)",
)
