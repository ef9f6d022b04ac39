"""The component graph of one config, built fresh or from the graph that ran before (reload).

`build_graph(config, telemetry, previous)` creates what `config` needs: one `ExporterQueue` per
exporter used, one processor chain per pipeline (a `PointMeter` after each processor, as the
console counts), one receiver per receiver used. Receivers feed each pipeline through its `Link`,
which stays the same object across reloads; a reload points it at the pipeline's new chain. Under
`--workers N` (an `Exchange`), each pipeline gets the exchange's router after its leading stateless
processors, and the exchange's entry for the pipeline is pointed at what follows the router.

With a `previous` graph (a reload), a component whose config did not change is taken over as it
runs: the same object with all its state. A changed one is built anew and offered its
predecessor (`Component.adopt`: a cardinality limiter keeps its tracked series, an exporter its
page or encoder); an exporter whose sending queue and retry settings did not change keeps its
queue (and lanes), only the exporter behind it is replaced. What the new graph does not take is
listed in `Graph.retired` for the service to stop, like at shutdown.

Invariant: building changes nothing in the running graph but what `adopt` handed over (state
the running components share with their successors, given back by `give_back` when the reload
fails before the switch); `Graph.switch()` alone rewires it, in one synchronous step (no await),
so each batch goes wholly through the old graph or wholly through the new one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import BaseModel

from metricgate.config import Config
from metricgate.config.types import ComponentConfig
from metricgate.pipeline.component import Component, Consumer, Exporter, Processor, Receiver
from metricgate.pipeline.exchange import Exchange
from metricgate.pipeline.fanout import ExporterFanOut, PipelineFanOut
from metricgate.pipeline.link import Link
from metricgate.pipeline.meter import PointMeter
from metricgate.pipeline.queue import ExporterQueue, QueueSettings, RetrySettings
from metricgate.telemetry.metrics import SelfMetrics


@dataclass
class BuiltExporter:
    """An exporter id's queue and the config its exporter was built from."""

    queue: ExporterQueue
    config: ComponentConfig


@dataclass
class BuiltProcessor:
    """A processor of one pipeline and the meter counting what it hands on."""

    processor: Processor
    meter: PointMeter
    config: ComponentConfig


@dataclass
class BuiltReceiver:
    """A receiver, its config and the pipelines it feeds."""

    receiver: Receiver
    config: ComponentConfig
    feeds: tuple[str, ...]


@dataclass
class Retired:
    """What a reload takes out of the running graph, for the service to stop in this order."""

    receivers: list[Receiver] = field(default_factory=list)
    processors: list[Processor] = field(default_factory=list)
    """Upstream first, so what one flushes at shutdown still finds its next processor running."""
    queues: list[ExporterQueue] = field(default_factory=list)
    exporters: list[Exporter] = field(default_factory=list)
    """Exporters replaced behind a queue that stays: shut down only, the queue keeps the data."""


@dataclass
class Fresh:
    """What a build created, for the service to start (exporters first, receivers last)."""

    queues: list[ExporterQueue] = field(default_factory=list)
    exporters: list[Exporter] = field(default_factory=list)
    """New exporters that go behind a queue kept from the previous graph."""
    processors: list[Processor] = field(default_factory=list)
    """Downstream first (start order)."""
    receivers: list[Receiver] = field(default_factory=list)
    replacing: dict[str, Receiver] = field(default_factory=dict)
    """Receiver id -> the previous receiver a new one replaces (stopped before it starts, so a
    listener on the same endpoint can bind)."""


@dataclass
class Changes:
    """What a reload did, by config key (`processors.batch`, `exporters.prometheus`)."""

    kept: list[str] = field(default_factory=list)
    rebuilt: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, list[str]]:
        return {
            "kept": self.kept,
            "rebuilt": self.rebuilt,
            "added": self.added,
            "removed": self.removed,
        }


@dataclass
class Graph:
    """The running components of one config (see module docstring)."""

    config: Config
    exporters: dict[str, BuiltExporter] = field(default_factory=dict)
    processors: dict[tuple[str, str], BuiltProcessor] = field(default_factory=dict)
    """By (pipeline id, processor id), in pipeline order."""
    receivers: dict[str, BuiltReceiver] = field(default_factory=dict)
    heads: dict[str, Link] = field(default_factory=dict)
    """Each pipeline's entry, by pipeline id."""
    fresh: Fresh = field(default_factory=Fresh)
    retired: Retired = field(default_factory=Retired)
    changes: Changes = field(default_factory=Changes)
    adopted: list[tuple[Component, Component]] = field(default_factory=list)
    """(rebuilt, predecessor) pairs that `adopt` ran on, to give back if the reload fails."""
    _wiring: list[tuple[Link | PointMeter, Consumer]] = field(default_factory=list)
    _swaps: list[tuple[ExporterQueue, Exporter]] = field(default_factory=list)

    @property
    def queues(self) -> dict[str, ExporterQueue]:
        return {eid: built.queue for eid, built in self.exporters.items()}

    def pipelines_of(self, receiver_id: str) -> dict[str, Consumer]:
        """The entry of each pipeline `receiver_id` feeds, by pipeline id."""
        return {pid: self.heads[pid] for pid in self.receivers[receiver_id].feeds}

    def give_back(self) -> None:
        """A reload that failed before the switch: each predecessor takes back what it handed
        over (the same `adopt`, the other way)."""
        for rebuilt, predecessor in reversed(self.adopted):
            predecessor.adopt(rebuilt)
        self.adopted = []

    def switch(self) -> None:
        """Point every link and meter at the new graph and swap replaced exporters into their
        queues: one synchronous step (see module docstring)."""
        for link, target in self._wiring:
            if isinstance(link, Link):
                link.target = target
            else:
                link.next_consumer = target
        for queue, exporter in self._swaps:
            queue.replace(exporter)
        self._wiring, self._swaps = [], []


def build_graph(
    config: Config,
    telemetry: SelfMetrics,
    previous: Graph | None = None,
    rebuild_auth: bool = False,
    exchange: Exchange | None = None,
) -> Graph:
    """The graph of `config`, taking over what it can of `previous` (see module docstring).
    `rebuild_auth`: the security layer is rebuilt, so is every component with `auth` (its
    guards belong to the previous layer). `exchange`: this worker's set under `--workers N`
    (each pipeline's router goes after its stateless processors)."""
    graph = Graph(config)
    before = previous or Graph(config)
    keeps = _keeps if not rebuild_auth else _keeps_without_auth
    try:
        _exporters(graph, before, keeps)
        _processors(graph, before, telemetry, exchange)
        _receivers(graph, before, keeps)
    except BaseException:  # a factory refused its config: nothing may stay handed over
        graph.give_back()
        raise
    if previous is None:
        graph.switch()
    return graph


def _exporters(graph: Graph, before: Graph, keeps: Keeps) -> None:
    pipelines = graph.config.service.pipelines
    used = dict.fromkeys(e for p in pipelines.values() for e in p.exporters)
    for exporter_id in used:
        spec = graph.config.exporters[exporter_id]
        old = before.exporters.get(exporter_id)
        key = f"exporters.{exporter_id}"
        if old is not None and keeps(old.config, spec.config):
            graph.exporters[exporter_id] = old
            graph.changes.kept.append(key)
            continue
        exporter = spec.factory.create(exporter_id, spec.config, None)
        if not isinstance(exporter, Exporter):
            raise TypeError(f"factory for {exporter_id!r} did not build an Exporter")
        queue_settings, retry = _queue_settings(spec.config)
        if old is not None:
            if exporter.adopt(old.queue.exporter):
                graph.adopted.append((exporter, old.queue.exporter))
            graph.changes.rebuilt.append(key)
            if old.queue.can_take(exporter, queue_settings, retry):
                graph.exporters[exporter_id] = BuiltExporter(old.queue, spec.config)
                graph.fresh.exporters.append(exporter)
                graph.retired.exporters.append(old.queue.exporter)
                graph._swaps.append((old.queue, exporter))
                continue
            graph.retired.queues.append(old.queue)
        else:
            graph.changes.added.append(key)
        queue = ExporterQueue(exporter, queue_settings, retry)
        graph.exporters[exporter_id] = BuiltExporter(queue, spec.config)
        graph.fresh.queues.append(queue)
    for exporter_id, old in before.exporters.items():
        if exporter_id not in graph.exporters:
            graph.retired.queues.append(old.queue)
            graph.changes.removed.append(f"exporters.{exporter_id}")


def _queue_settings(config: ComponentConfig) -> tuple[QueueSettings, RetrySettings]:
    return (
        getattr(config, "sending_queue", None) or QueueSettings(),
        getattr(config, "retry_on_failure", None) or RetrySettings(),
    )


def _stateless_prefix(config: Config, processor_ids: list[str]) -> int:
    """How many of a pipeline's first processors are stateless (`Factory.stateless`)."""
    count = 0
    for processor_id in processor_ids:
        if not getattr(config.processors[processor_id].factory, "stateless", False):
            break
        count += 1
    return count


def _routed(graph: Graph, exchange: Exchange, pipeline_id: str, consumer: Consumer) -> Consumer:
    """The pipeline's router in front of `consumer`, which becomes where routed batches enter."""
    graph._wiring.append((exchange.entry(pipeline_id), consumer))
    return exchange.router(pipeline_id)


def _processors(
    graph: Graph, before: Graph, telemetry: SelfMetrics, exchange: Exchange | None
) -> None:
    config = graph.config
    replaced_queues = {
        eid for eid, built in graph.exporters.items() if before.exporters.get(eid) is not built
    }
    for pipeline_id, pipeline in config.service.pipelines.items():
        consumer: Consumer = ExporterFanOut([graph.exporters[e].queue for e in pipeline.exporters])
        chain: list[tuple[str, BuiltProcessor]] = []
        routed_after = _stateless_prefix(config, pipeline.processors) if exchange else -1
        for index in reversed(range(len(pipeline.processors))):
            if index + 1 == routed_after and exchange is not None:
                consumer = _routed(graph, exchange, pipeline_id, consumer)
            processor_id = pipeline.processors[index]
            spec = config.processors[processor_id]
            old = before.processors.get((pipeline_id, processor_id))
            key = f"processors.{processor_id} (pipeline {pipeline_id})"
            if (
                old is not None
                and _keeps(old.config, spec.config)
                and not (old.processor.holds_exporters and replaced_queues)
            ):
                graph._wiring.append((old.meter, consumer))
                chain.append((processor_id, old))
                graph.changes.kept.append(key)
                consumer = old.processor
                continue
            outgoing = telemetry.processor_outgoing.labels(processor_id, pipeline_id)
            meter = PointMeter(consumer, outgoing.inc)
            processor = spec.factory.create(processor_id, spec.config, meter)
            if not isinstance(processor, Processor):
                raise TypeError(f"factory for {processor_id!r} did not build a Processor")
            if old is not None:
                if processor.adopt(old.processor):
                    graph.adopted.append((processor, old.processor))
                graph.changes.rebuilt.append(key)
            else:
                graph.changes.added.append(key)
            graph.fresh.processors.append(processor)
            chain.append((processor_id, BuiltProcessor(processor, meter, spec.config)))
            consumer = processor
        if routed_after == 0 and exchange is not None:
            consumer = _routed(graph, exchange, pipeline_id, consumer)
        for processor_id, built in reversed(chain):
            graph.processors[(pipeline_id, processor_id)] = built
        head = before.heads.get(pipeline_id)
        if head is None:
            head = Link(consumer)
        graph.heads[pipeline_id] = head
        graph._wiring.append((head, consumer))
    for (pipeline_id, processor_id), old in before.processors.items():
        new = graph.processors.get((pipeline_id, processor_id))
        if new is None or new.processor is not old.processor:
            graph.retired.processors.append(old.processor)
            if new is None:
                graph.changes.removed.append(f"processors.{processor_id} (pipeline {pipeline_id})")


def _receivers(graph: Graph, before: Graph, keeps: Keeps) -> None:
    config = graph.config
    pipelines = config.service.pipelines
    for receiver_id in dict.fromkeys(r for p in pipelines.values() for r in p.receivers):
        spec = config.receivers[receiver_id]
        feeds = tuple(pid for pid, p in pipelines.items() if receiver_id in p.receivers)
        old = before.receivers.get(receiver_id)
        key = f"receivers.{receiver_id}"
        if old is not None and keeps(old.config, spec.config) and old.feeds == feeds:
            graph.receivers[receiver_id] = old
            graph.changes.kept.append(key)
            continue
        targets = [graph.heads[pid] for pid in feeds]
        consumer: Consumer = targets[0] if len(targets) == 1 else PipelineFanOut(targets)
        receiver = spec.factory.create(receiver_id, spec.config, consumer)
        if not isinstance(receiver, Receiver):
            raise TypeError(f"factory for {receiver_id!r} did not build a Receiver")
        graph.receivers[receiver_id] = BuiltReceiver(receiver, spec.config, feeds)
        graph.fresh.receivers.append(receiver)
        if old is not None:
            if receiver.adopt(old.receiver):
                graph.adopted.append((receiver, old.receiver))
            graph.fresh.replacing[receiver_id] = old.receiver
            graph.changes.rebuilt.append(key)
        else:
            graph.changes.added.append(key)
    for receiver_id, old in before.receivers.items():
        if receiver_id not in graph.receivers:
            graph.retired.receivers.append(old.receiver)
            graph.changes.removed.append(f"receivers.{receiver_id}")


Keeps = Callable[[ComponentConfig, ComponentConfig], bool]
"""Whether a running component (built from the first config) is kept for the second config."""


def _keeps(old: ComponentConfig, new: ComponentConfig) -> bool:
    return type(old) is type(new) and old == new


def _keeps_without_auth(old: ComponentConfig, new: ComponentConfig) -> bool:
    return _keeps(old, new) and not _has_auth(new)


def _has_auth(value: object) -> bool:
    """Whether a config sets `auth` on any of its listeners."""
    if isinstance(value, BaseModel):
        if getattr(value, "auth", None) is not None:
            return True
        return any(_has_auth(getattr(value, name)) for name in type(value).model_fields)
    if isinstance(value, dict):
        return any(_has_auth(item) for item in value.values())
    if isinstance(value, list | tuple):
        return any(_has_auth(item) for item in value)
    return False
