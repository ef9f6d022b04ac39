"""The running gateway: builds the component graph from a `Config`, starts and stops it in order,
and reloads it by difference.

Build (`graph.py`): one instance per configured exporter (shared by the pipelines that list it,
each behind its own `ExporterQueue`), one processor chain per pipeline (processors keep
per-pipeline state, as in the Collector), one instance per receiver feeding every pipeline that
lists it through the pipeline's `Link`. What each processor hands on is counted per pipeline by a
`PointMeter` (once per batch), and the console is shown the graph (`Console.show_gateway`).

The security layer (`metricgate.access.GatewayAccess`: the extensions `service.extensions`
enables, the tenant directory) is built with the graph and handed to components on the `Host`,
together with the pipelines each receiver feeds (tenants may be kept out of some).

Start order is the memory limiter (`service.memory_limiter`, one per process), extensions,
exporters, processors (last first), receivers, so nothing receives data before its consumers and
authenticators run. Shutdown is the reverse, within `service.shutdown_timeout`: receivers stop
accepting, processors flush, queues drain, exporters flush, extensions stop.

`reload(config)` builds the new graph from the running one (unchanged components kept as they
run, changed ones rebuilt with their predecessor's state), starts what is new, switches the
pipelines over in one step, then stops what the new config no longer has, in shutdown order. The
security layer is rebuilt only when `extensions`, `service.extensions` or `tenants` changed (then
every listener with `auth` is rebuilt with it). `service.telemetry` and `service.memory_limiter`
apply at the next start only (a reload that changes them says so in a warning).

With `service.state_directory`, every `Stateful` component of the graph (an exporter, or a
processor in one pipeline) gets its snapshot back before anything starts, and the components of
the graph running at shutdown write new ones once everything stopped
(`metricgate.pipeline.snapshots`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterable

from metricgate import role
from metricgate.access import AdminGate, AuditSink, GatewayAccess
from metricgate.config import Config
from metricgate.config.components import ComponentSpec
from metricgate.pipeline.component import Component, Exporter, Processor, Receiver
from metricgate.pipeline.encryption import Keyring
from metricgate.pipeline.exchange import Exchange
from metricgate.pipeline.graph import Changes, Fresh, Graph, Retired, build_graph
from metricgate.pipeline.host import Host
from metricgate.pipeline.memory import MemoryLimiter
from metricgate.pipeline.queue import ExporterQueue
from metricgate.pipeline.snapshots import SnapshotStore, Stateful, Tracked, config_digest
from metricgate.telemetry import SelfMetrics, TelemetryServer
from metricgate.telemetry.console.routes import GRAPH_TOPIC
from metricgate.telemetry.server import READY_TOPIC, TELEMETRY_TOPIC

log = logging.getLogger(__name__)


class Service:
    """One gateway: components, queues, telemetry server, lifecycle, reload."""

    def __init__(
        self,
        config: Config,
        telemetry: SelfMetrics | None = None,
        audit: AuditSink | None = None,
        exchange: Exchange | None = None,
    ) -> None:
        self.config = config
        self.exchange = exchange
        """The other workers of a `--workers N` set; None when this process runs alone."""
        self.telemetry = telemetry or SelfMetrics()
        self.audit = audit
        self.access = GatewayAccess.build(config, self.telemetry, audit)
        metrics = config.service.telemetry.metrics
        self.telemetry_server = (
            TelemetryServer(metrics.address, self.telemetry, metrics) if metrics.address else None
        )
        self._set_admin_gate(config, self.access)
        if exchange is not None and self.telemetry_server is not None:
            server = self.telemetry_server
            self.telemetry_server.workers = (exchange.index, exchange.ask_peers)

            async def own_page(_: bytes) -> bytes:
                return server.own_page()

            async def ready(_: bytes) -> bytes:
                return b"1" if server.ready else b"0"

            async def graph(_: bytes) -> bytes:
                return json.dumps(server.console.graph_part()).encode()

            exchange.answer(TELEMETRY_TOPIC, own_page)
            exchange.answer(READY_TOPIC, ready)
            exchange.answer(GRAPH_TOPIC, graph)
            server.console.peers = exchange.ask_peers
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
        self.host.exchange = exchange
        self.graph: Graph = build_graph(config, self.telemetry, exchange=exchange)
        self._publish(self.graph)
        self._started: list[Component | ExporterQueue] = []
        self._reloading = asyncio.Lock()
        self._register_gauges()
        directory = config.service.state_directory
        self.snapshots = (
            SnapshotStore(role.CURRENT.state_directory(directory), self._state_keyring())
            if directory
            else None
        )

    # --- the running graph ------------------------------------------------------------------

    @property
    def exporter_queues(self) -> dict[str, ExporterQueue]:
        return self.graph.queues

    @property
    def processors(self) -> list[tuple[str, Processor]]:
        """(pipeline id, processor) of every pipeline, in pipeline order."""
        return [(pid, built.processor) for (pid, _), built in self.graph.processors.items()]

    @property
    def receivers(self) -> dict[str, Receiver]:
        return {rid: built.receiver for rid, built in self.graph.receivers.items()}

    def _publish(self, graph: Graph) -> None:
        """Tell the host and the console what runs now."""
        self.host.exporters = graph.queues
        self.host.pipelines = {rid: graph.pipelines_of(rid) for rid in graph.receivers}
        self.host.tenants = graph.config.tenants
        self.host.inflight.limit = graph.config.service.max_inflight_request_bytes
        if self.telemetry_server is not None:
            self.telemetry_server.console.show_gateway(
                graph.config,
                lambda: {eid: (q.size, q.capacity) for eid, q in self.exporter_queues.items()},
            )

    def _set_admin_gate(self, config: Config, access: GatewayAccess) -> None:
        if self.telemetry_server is None:
            return
        metrics = config.service.telemetry.metrics
        guard = access.guard("telemetry", metrics.auth, role="admin")
        self.telemetry_server.admin_gate = AdminGate(guard, access) if guard else None

    def _register_gauges(self) -> None:
        inflight = self.host.inflight
        self.telemetry.gauge(
            "metricgate_receiver_inflight_bytes",
            "Request bytes receivers hold right now; service.max_inflight_request_bytes caps it.",
            [],
        ).observe(lambda: {(): float(inflight.used)})
        self.telemetry.gauge(
            "metricgate_exporter_queue_size",
            "Batches waiting in an exporter's sending queue.",
            ["exporter"],
        ).observe(lambda: {(eid,): float(q.size) for eid, q in self.exporter_queues.items()})
        self.telemetry.gauge(
            "metricgate_exporter_queue_capacity",
            "Capacity of an exporter's sending queue, in batches.",
            ["exporter"],
        ).observe(lambda: {(eid,): float(q.capacity) for eid, q in self.exporter_queues.items()})

    # --- state across restarts --------------------------------------------------------------

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

    def stateful(self) -> list[Tracked]:
        """The running graph's components whose state is kept across restarts."""
        graph = self.graph
        candidates: list[tuple[str, ComponentSpec, Component]] = [
            (f"exporter-{eid}", graph.config.exporters[eid], built.queue.exporter)
            for eid, built in graph.exporters.items()
        ]
        candidates += [
            (f"processor-{prid}@{pid}", graph.config.processors[prid], built.processor)
            for (pid, prid), built in graph.processors.items()
        ]
        return [
            Tracked(key, spec.factory.type, config_digest(spec.factory.type, spec.config), part)
            for key, spec, part in candidates
            if isinstance(part, Stateful)
        ]

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Start everything in dependency order; on failure, stop what started and re-raise."""
        if self.snapshots is not None:
            self.snapshots.restore_all(self.stateful())
        try:
            if self.memory_limiter is not None:
                self.memory_limiter.register_telemetry(self.telemetry)
                await self.memory_limiter.start()
            await self.access.start()
            fresh = self.graph.fresh
            for queue in fresh.queues:
                await queue.start(self.host)
                self._started.append(queue)
            for processor in fresh.processors:
                await processor.start(self.host)
                self._started.append(processor)
            for receiver in fresh.receivers:
                await receiver.start(self.host)
                self._started.append(receiver)
            if self.telemetry_server is not None:
                await self.telemetry_server.start()
                self.telemetry_server.ready = True
        except BaseException:
            await self.shutdown(time.monotonic() + 5.0)
            raise
        self.telemetry.config_reloaded(time.time())
        log.info(
            "metricgate started",
            extra={
                "receivers": list(self.graph.receivers),
                "exporters": list(self.graph.exporters),
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
        await _stop(reversed(started), deadline)
        if started and self.snapshots is not None:
            self.snapshots.save_all(self.stateful())
        if self.memory_limiter is not None:
            await self.memory_limiter.shutdown()
        if self.telemetry_server is not None:
            await self.telemetry_server.shutdown()
        await self.access.shutdown()

    # --- reload -----------------------------------------------------------------------------

    async def reload(self, config: Config) -> Changes:
        """Run `config` instead of the running one, by difference (see module docstring).

        Raises what starting a new component raised (a port taken) with the running graph left
        as it was, except that a listener whose predecessor had to stop first to free its
        endpoint stays stopped.
        """
        async with self._reloading:
            if _restart_only(config) != _restart_only(self.config):
                log.warning(
                    "config reload: service.telemetry (but its auth) and service.memory_limiter "
                    "apply at the next start; their changes are not applied now"
                )
            old_access = self.access
            access_changed = _access_config(config) != _access_config(self.config)
            access = (
                GatewayAccess.build(config, self.telemetry, self.audit)
                if access_changed
                else old_access
            )
            graph = build_graph(
                config,
                self.telemetry,
                self.graph,
                rebuild_auth=access_changed,
                exchange=self.exchange,
            )
            if access_changed:
                await access.start()
                self.host.access = access
            try:
                await self._start_fresh(graph)
            except BaseException:
                self.host.access = old_access
                if access_changed:
                    await access.shutdown()
                raise
            graph.switch()
            self.graph, self.config, self.access = graph, config, access
            self._publish(graph)
            self._set_admin_gate(config, access)
            deadline = time.monotonic() + config.service.shutdown_timeout
            failed = await self._swap_receivers(graph)
            retired = graph.retired
            await _stop(retired.receivers, deadline)
            await _stop(retired.processors, deadline)
            await _stop(retired.queues, deadline)
            await _stop(retired.exporters, deadline)
            if access_changed:
                await old_access.shutdown()
            self._started = [
                *(b.queue for b in graph.exporters.values()),
                *(b.processor for b in reversed(graph.processors.values())),
                *(b.receiver for b in graph.receivers.values()),
            ]
            changes = graph.changes
            graph.fresh, graph.retired = Fresh(), Retired()  # let the old components go
            if failed is not None:
                raise failed
            return changes

    async def _start_fresh(self, graph: Graph) -> None:
        """Start the new exporters and processors; on failure stop them again and re-raise."""
        host, started = self.host, list[Component | ExporterQueue]()
        previous = self.graph.exporters
        exporters_before = host.exporters
        try:
            for queue in graph.fresh.queues:
                old = previous.get(queue.component_id)
                await _start_freeing(queue, old.queue if old is not None else None, host)
                started.append(queue)
            for exporter in graph.fresh.exporters:
                old = previous.get(exporter.component_id)
                await _start_freeing(exporter, old.queue.exporter if old else None, host)
                started.append(exporter)
            host.exporters = graph.queues  # what processors that send to exporters start with
            for processor in graph.fresh.processors:
                await processor.start(host)
                started.append(processor)
        except BaseException:
            host.exporters = exporters_before
            graph.give_back()  # before stopping: what was handed over must not be flushed
            await _stop(reversed(started), time.monotonic() + 5.0)
            raise

    async def _swap_receivers(self, graph: Graph) -> Exception | None:
        """Stop the receivers being replaced, start the new ones; the first failure, if any."""
        failed: Exception | None = None
        deadline = time.monotonic() + self.config.service.shutdown_timeout
        await _stop(graph.fresh.replacing.values(), deadline)
        for receiver in graph.fresh.receivers:
            try:
                await receiver.start(self.host)
            except Exception as exc:
                log.error(
                    "config reload: a receiver could not start",
                    extra={"receiver": receiver.component_id, "error": str(exc)},
                )
                failed = failed or exc
        return failed


def _access_config(config: Config) -> tuple[object, ...]:
    """What the security layer is built from."""
    return (config.extensions, config.service.extensions, config.tenants)


def _restart_only(config: Config) -> tuple[object, ...]:
    """What a reload does not apply: the telemetry server's listener, logs, audit log and the
    memory limiter run for the whole process (the telemetry server's `auth` does apply)."""
    telemetry = config.service.telemetry
    return (
        telemetry.metrics.model_copy(update={"auth": None}),
        telemetry.logs,
        telemetry.audit,
        config.service.memory_limiter,
    )


async def _start_freeing(
    starting: ExporterQueue | Exporter, previous: ExporterQueue | Exporter | None, host: Host
) -> None:
    """Start `starting`; if it cannot listen and its predecessor (same id) runs, stop that one
    first to free its endpoint and try once more."""
    try:
        await starting.start(host)
    except OSError:
        if previous is None:
            raise
        log.info(
            "config reload: stopping the previous instance first to free its endpoint",
            extra={"component": previous.component_id},
        )
        await _stop([previous], time.monotonic() + 5.0)
        await starting.start(host)


async def _stop(components: Iterable[Component | ExporterQueue], deadline: float) -> None:
    """Shut `components` down in the order given, queues draining until `deadline`."""
    for component in components:
        try:
            if isinstance(component, ExporterQueue):
                await component.shutdown(deadline)
                component.exporter.stop_reporting()
            else:
                remaining = max(0.1, deadline - time.monotonic())
                await asyncio.wait_for(component.shutdown(), remaining)
                component.stop_reporting()
        except Exception as exc:
            log.error(
                "component failed to shut down cleanly",
                extra={"component": getattr(component, "component_id", "?"), "error": repr(exc)},
            )
