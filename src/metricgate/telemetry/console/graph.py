"""The pipeline graph as configured, with live points/s on each edge and each exporter's health.

Edges of one pipeline, and the counter each rate comes from (all bumped once per batch):

    receiver -> first stage      metricgate_receiver_accepted_points_total{receiver}
    processor -> next stage      metricgate_processor_outgoing_points_total{processor,pipeline}
    stage -> each exporter       the same rate as the stage before (the fan-out copies nothing)
    exporter -> its backend      metricgate_exporter_sent_points_total{exporter}

A receiver feeding several pipelines hands each of them every batch, so its accepted rate is the
rate into each. Exporter health, from the sampler's last-rise times and the queue fill:

    failing      trouble (a retry, points given up or refused by a full queue) and nothing
                 delivered since; or the queue is at least half full with nothing delivered
                 within the window (a stalled backend)
    recovering   delivered since the last trouble, but that trouble is under a minute old; or
                 the queue is at least half full and draining (a backlog)
    healthy      otherwise

With `--workers N`, whichever worker answers asks the others for their reports and merges them
(`merge_graphs`): the graph shows the whole set, as the own-telemetry page does.

Invariant: the report is computed from counters, gauges and the config only, at request time;
nothing here runs on the data path.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from metricgate.telemetry.console.rates import RateSampler

if TYPE_CHECKING:
    from metricgate.config import Config

QueueFill = Callable[[], Mapping[str, tuple[int, int]]]
"""Exporter id -> (batches queued, queue capacity), read at request time."""

RECENT_TROUBLE_S = 60.0
BACKLOG_FILL = 0.5


@dataclass(frozen=True)
class PipelineShape:
    """One configured pipeline: its component ids in order."""

    id: str
    receivers: tuple[str, ...]
    processors: tuple[str, ...]
    exporters: tuple[str, ...]


@dataclass(frozen=True)
class GatewayShape:
    """The configured graph: pipelines, and each component's type by (kind, id)."""

    pipelines: tuple[PipelineShape, ...]
    types: Mapping[tuple[str, str], str]

    @classmethod
    def of(cls, config: Config) -> GatewayShape:
        pipelines = tuple(
            PipelineShape(pid, tuple(p.receivers), tuple(p.processors), tuple(p.exporters))
            for pid, p in config.service.pipelines.items()
        )
        types = {
            (kind, cid): spec.factory.type
            for kind, section in (
                ("receiver", config.receivers),
                ("processor", config.processors),
                ("exporter", config.exporters),
            )
            for cid, spec in section.items()
        }
        return cls(pipelines, types)

    def component_ids(self) -> set[str]:
        return {cid for _, cid in self.types}


def exporter_health(
    now: float,
    window: float,
    last_sent: float | None,
    last_trouble: float | None,
    fill: float,
) -> str:
    """`healthy`, `recovering` or `failing` (see the module docstring); times on one clock."""
    delivering = last_sent is not None and now - last_sent <= window
    if last_trouble is not None:
        if last_sent is None or last_sent < last_trouble:
            return "failing"
        if now - last_trouble < RECENT_TROUBLE_S:
            return "recovering"
    if fill >= BACKLOG_FILL:
        return "recovering" if delivering else "failing"
    return "healthy"


def graph_report(
    shape: GatewayShape,
    sampler: RateSampler,
    queue_fill: QueueFill,
    errors: Mapping[tuple[str, str], dict[str, Any]],
) -> dict[str, Any]:
    """The graph as JSON: pipelines with nodes and edges, and every exporter's state."""

    def last_error(kind: str, cid: str) -> dict[str, Any] | None:
        return errors.get((kind, cid)) or errors.get(("component", cid))

    def node(kind: str, cid: str, **rates: float) -> dict[str, Any]:
        return {
            "id": cid,
            "kind": kind,
            "type": shape.types.get((kind, cid), cid.partition("/")[0]),
            **{name: round(value, 3) for name, value in rates.items()},
            "last_error": last_error(kind, cid),
        }

    pipelines = []
    for pipeline in shape.pipelines:
        receivers = [
            node(
                "receiver",
                rid,
                points_per_second=sampler.rate("receiver_accepted", (rid,)),
                refused_per_second=sampler.rate("receiver_refused", (rid,)),
            )
            for rid in pipeline.receivers
        ]
        processors = [
            node(
                "processor",
                pid,
                points_per_second=sampler.rate("processor_outgoing", (pid, pipeline.id)),
                dropped_per_second=sampler.rate("processor_dropped", (pid,)),
            )
            for pid in pipeline.processors
        ]
        # Every node id of the chain, in order: the receivers feed the first stage, each
        # processor the next, the last stage every exporter.
        stages = [f"processor:{p['id']}" for p in processors]
        heads = stages[:1] or [f"exporter:{eid}" for eid in pipeline.exporters]
        edges = [
            _edge(f"receiver:{r['id']}", head, r["points_per_second"])
            for r in receivers
            for head in heads
        ]
        edges.extend(
            _edge(stages[i - 1], stages[i], processors[i - 1]["points_per_second"])
            for i in range(1, len(stages))
        )
        if processors:
            edges.extend(
                _edge(stages[-1], f"exporter:{eid}", processors[-1]["points_per_second"])
                for eid in pipeline.exporters
            )
        pipelines.append(
            {
                "id": pipeline.id,
                "receivers": receivers,
                "processors": processors,
                "exporters": list(pipeline.exporters),
                "edges": edges,
            }
        )

    fills = queue_fill()
    now = sampler.clock()
    exporters: dict[str, Any] = {}
    for eid in dict.fromkeys(e for p in shape.pipelines for e in p.exporters):
        size, capacity = fills.get(eid, (0, 0))
        fill = size / capacity if capacity else 0.0
        exporters[eid] = {
            **node(
                "exporter",
                eid,
                sent_per_second=sampler.rate("exporter_sent", (eid,)),
                trouble_per_second=sampler.rate("exporter_trouble", (eid,)),
                retries_per_second=sampler.rate("exporter_retries", (eid,)),
            ),
            "health": exporter_health(
                now,
                sampler.window,
                sampler.last_rise("exporter_sent", (eid,)),
                sampler.last_rise("exporter_trouble", (eid,)),
                fill,
            ),
            "queue": {"size": size, "capacity": capacity, "fill": round(fill, 4)},
        }
    return {
        "window_seconds": round(sampler.span, 3),
        "pipelines": pipelines,
        "exporters": exporters,
    }


_HEALTH_ORDER = {"healthy": 0, "recovering": 1, "failing": 2}


def merge_graphs(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The reports of every worker of a `--workers N` set (the same config) as one: rates and
    queues summed, each exporter's worst health, each component's newest error."""
    whole = copy.deepcopy(parts[0])
    for part in parts[1:]:
        for mine, theirs in zip(whole["pipelines"], part["pipelines"], strict=True):
            for kind in ("receivers", "processors", "edges"):
                for a, b in zip(mine[kind], theirs[kind], strict=True):
                    _add(a, b)
        for eid, theirs in part["exporters"].items():
            mine = whole["exporters"][eid]
            _add(mine, theirs)
            mine["health"] = max(mine["health"], theirs["health"], key=_HEALTH_ORDER.__getitem__)
            for field in ("size", "capacity"):
                mine["queue"][field] += theirs["queue"][field]
        whole["window_seconds"] = min(whole["window_seconds"], part["window_seconds"])
    for exporter in whole["exporters"].values():
        queue = exporter["queue"]
        queue["fill"] = round(queue["size"] / queue["capacity"], 4) if queue["capacity"] else 0.0
    return whole


def _add(mine: dict[str, Any], theirs: dict[str, Any]) -> None:
    """Another worker's node or edge into `mine`: its rates added, the newer last error."""
    for key, value in theirs.items():
        if key.endswith("_per_second"):
            mine[key] = round(mine[key] + value, 3)
        elif key == "last_error" and _newer(value, mine[key]):
            mine[key] = value


def _newer(error: dict[str, Any] | None, than: dict[str, Any] | None) -> bool:
    return error is not None and (than is None or error["time"] > than["time"])


def _edge(source: str, target: str, rate: float) -> dict[str, Any]:
    return {"from": source, "to": target, "points_per_second": rate}
