"""The running gateway: builds the component graph from a `Config`, starts and stops it in order.

Build: one instance per configured exporter (shared by the pipelines that list it, each behind its
own `ExporterQueue`), one processor chain per pipeline (processors keep per-pipeline state, as in
the Collector), one instance per receiver feeding every pipeline that lists it. What each processor
hands on is counted per pipeline by a `PointMeter` (once per batch), and the console is shown the
graph (`Console.show_gateway`).

The security layer (`metricgate.access.GatewayAccess`: the extensions `service.extensions` enables,
the tenant directory) is built with the graph and handed to components on the `Host`, together
with the pipelines each receiver feeds (tenants may be kept out of some).

Start order is the memory limiter (`service.memory_limiter`, one per process), extensions,
exporters, processors (last first), receivers, so nothing receives data before its consumers and
authenticators run. Shutdown is the reverse, within `service.shutdown_timeout`: receivers stop
accepting, processors flush, queues drain, exporters flush, extensions stop.

With `service.state_directory`, every `Stateful` component (an exporter, or a processor in one
pipeline) gets its snapshot back before anything starts, and writes a new one once everything
stopped (`metricgate.pipeline.snapshots`).
"""

from __future__ import annotations

import asyncio
import logging
import time

from metricgate.access import AdminGate, AuditSink, GatewayAccess
from metricgate.config import Config
from metricgate.config.types import ComponentConfig
from metricgate.pipeline.component import Component, Consumer, Exporter, Processor, Receiver
from metricgate.pipeline.encryption import Keyring
from metricgate.pipeline.fanout import ExporterFanOut, PipelineFanOut
from metricgate.pipeline.host import Host
from metricgate.pipeline.memory import MemoryLimiter
from metricgate.pipeline.meter import PointMeter
from metricgate.pipeline.queue import ExporterQueue, QueueSettings, RetrySettings
from metricgate.pipeline.snapshots import SnapshotStore, Stateful, Tracked, config_digest
from metricgate.telemetry import SelfMetrics, TelemetryServer

log = logging.getLogger(__name__)


class Service:
    """One gateway: components, queues, telemetry server, lifecycle."""

    def __init__(
        self,
        config: Config,
        telemetry: SelfMetrics | None = None,
        audit: AuditSink | None = None,
    ) -> None:
        self.config = config
        self.telemetry = telemetry or SelfMetrics()
        self.access = GatewayAccess.build(config, self.telemetry, audit)
        metrics = config.service.telemetry.metrics
        self.telemetry_server = (
            TelemetryServer(metrics.address, self.telemetry, metrics) if metrics.address else None
        )
        if self.telemetry_server is not None:
            guard = self.access.guard("telemetry", metrics.auth, role="admin")
            if guard is not None:
                self.telemetry_server.admin_gate = AdminGate(guard, self.access)
        self.host = Host(
            self.telemetry,
            self.telemetry_server.app if self.telemetry_server else None,
            config.tenants,
        )
        self.host.access = self.access
        self.host.inflight.limit = config.service.max_inflight_request_bytes
        limiter = config.service.memory_limiter
        self.memory_limiter = MemoryLimiter(limiter, self.host.memory) if limiter else None
        """Process-wide; started before any component, so receivers are guarded from the start."""
        self.exporter_queues: dict[str, ExporterQueue] = {}
        self.processors: list[tuple[str, Processor]] = []
        self.receivers: dict[str, Receiver] = {}
        self._started: list[Component | ExporterQueue] = []
        directory = config.service.state_directory
        self.snapshots = SnapshotStore(directory, self._state_keyring()) if directory else None
        self.stateful: list[Tracked] = []
        """Components whose state is kept across restarts (with `service.state_directory`)."""
        self._build()

    def _build(self) -> None:
        config = self.config
        pipelines = config.service.pipelines
        for exporter_id in dict.fromkeys(e for p in pipelines.values() for e in p.exporters):
            spec = config.exporters[exporter_id]
            exporter = spec.factory.create(exporter_id, spec.config, None)
            if not isinstance(exporter, Exporter):
                raise TypeError(f"factory for {exporter_id!r} did not build an Exporter")
            queue = ExporterQueue(
                exporter,
                getattr(spec.config, "sending_queue", None) or QueueSettings(),
                getattr(spec.config, "retry_on_failure", None) or RetrySettings(),
            )
            self.exporter_queues[exporter_id] = queue
            self._track(f"exporter-{exporter_id}", spec.factory.type, spec.config, exporter)
        self.host.exporters = self.exporter_queues

        heads: dict[str, Consumer] = {}
        for pipeline_id, pipeline in pipelines.items():
            consumer: Consumer = ExporterFanOut(
                [self.exporter_queues[e] for e in pipeline.exporters]
            )
            for processor_id in reversed(pipeline.processors):
                spec = config.processors[processor_id]
                outgoing = self.telemetry.processor_outgoing.labels(processor_id, pipeline_id)
                metered = PointMeter(consumer, outgoing.inc)
                processor = spec.factory.create(processor_id, spec.config, metered)
                if not isinstance(processor, Processor):
                    raise TypeError(f"factory for {processor_id!r} did not build a Processor")
                self.processors.append((pipeline_id, processor))
                key = f"processor-{processor_id}@{pipeline_id}"
                self._track(key, spec.factory.type, spec.config, processor)
                consumer = processor
            heads[pipeline_id] = consumer

        for receiver_id in dict.fromkeys(r for p in pipelines.values() for r in p.receivers):
            fed = {pid: heads[pid] for pid, p in pipelines.items() if receiver_id in p.receivers}
            self.host.pipelines[receiver_id] = fed
            targets = list(fed.values())
            spec = config.receivers[receiver_id]
            next_consumer = targets[0] if len(targets) == 1 else PipelineFanOut(targets)
            receiver = spec.factory.create(receiver_id, spec.config, next_consumer)
            if not isinstance(receiver, Receiver):
                raise TypeError(f"factory for {receiver_id!r} did not build a Receiver")
            self.receivers[receiver_id] = receiver

        inflight = self.host.inflight
        self.telemetry.gauge(
            "metricgate_receiver_inflight_bytes",
            "Request bytes receivers hold right now; service.max_inflight_request_bytes caps it.",
            [],
        ).observe(lambda: {(): float(inflight.used)})
        queues = self.exporter_queues
        self.telemetry.gauge(
            "metricgate_exporter_queue_size",
            "Batches waiting in an exporter's sending queue.",
            ["exporter"],
        ).observe(lambda: {(eid,): float(q.size) for eid, q in queues.items()})
        self.telemetry.gauge(
            "metricgate_exporter_queue_capacity",
            "Capacity of an exporter's sending queue, in batches.",
            ["exporter"],
        ).observe(lambda: {(eid,): float(q.capacity) for eid, q in queues.items()})
        if self.telemetry_server is not None:
            self.telemetry_server.console.show_gateway(
                config, lambda: {eid: (q.size, q.capacity) for eid, q in queues.items()}
            )

    def _state_keyring(self) -> Keyring | None:
        sealing = self.config.service.state_encryption
        if sealing is not None:
            return Keyring.from_config(sealing, "service.state_encryption")
        for exporter_id, spec in self.config.exporters.items():
            queue = getattr(spec.config, "sending_queue", None)
            storage = getattr(queue, "storage", None)
            if getattr(storage, "encryption", None) is not None:
                log.warning(
                    "state snapshots are written in the clear although exporter "
                    f"{exporter_id}'s sending queue is encrypted: set service.state_encryption",
                    extra={"exporter": exporter_id},
                )
                break
        return None

    def _track(
        self, key: str, component_type: str, config: ComponentConfig, component: Component
    ) -> None:
        if self.snapshots is not None and isinstance(component, Stateful):
            digest = config_digest(component_type, config)
            self.stateful.append(Tracked(key, component_type, digest, component))

    async def start(self) -> None:
        """Start everything in dependency order; on failure, stop what started and re-raise."""
        if self.snapshots is not None:
            self.snapshots.restore_all(self.stateful)
        try:
            if self.memory_limiter is not None:
                self.memory_limiter.register_telemetry(self.telemetry)
                await self.memory_limiter.start()
            await self.access.start()
            for queue in self.exporter_queues.values():
                await queue.start(self.host)
                self._started.append(queue)
            for _, processor in reversed(self.processors):
                await processor.start(self.host)
                self._started.append(processor)
            for receiver in self.receivers.values():
                await receiver.start(self.host)
                self._started.append(receiver)
            if self.telemetry_server is not None:
                await self.telemetry_server.start()
                self.telemetry_server.ready = True
        except BaseException:
            await self.shutdown(time.monotonic() + 5.0)
            raise
        log.info(
            "metricgate started",
            extra={
                "receivers": list(self.receivers),
                "exporters": list(self.exporter_queues),
                "pipelines": list(self.config.service.pipelines),
            },
        )

    async def shutdown(self, deadline: float | None = None) -> None:
        """Stop in reverse order, draining queues until `deadline` (monotonic seconds)."""
        if deadline is None:
            deadline = time.monotonic() + self.config.service.shutdown_timeout
        if self.telemetry_server is not None:
            self.telemetry_server.ready = False
        started, self._started = self._started, []
        keep_state = bool(started) and self.snapshots is not None
        for component in reversed(started):
            try:
                if isinstance(component, ExporterQueue):
                    await component.shutdown(deadline)
                else:
                    remaining = max(0.1, deadline - time.monotonic())
                    await asyncio.wait_for(component.shutdown(), remaining)
            except Exception as exc:
                log.error(
                    "component failed to shut down cleanly",
                    extra={
                        "component": getattr(component, "component_id", "?"),
                        "error": repr(exc),
                    },
                )
        if keep_state and self.snapshots is not None:
            self.snapshots.save_all(self.stateful)
        if self.memory_limiter is not None:
            await self.memory_limiter.shutdown()
        if self.telemetry_server is not None:
            await self.telemetry_server.shutdown()
        await self.access.shutdown()
