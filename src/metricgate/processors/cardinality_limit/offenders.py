"""What the limiters tell operators: self-metric gauges, the `/debug/cardinality` page and the
operator console's cardinality explorer.

`GET /debug/cardinality` on the telemetry address lists, per limiter, the metrics with the most
series seen in the window (passed + refused) and, for each, the labels with the most distinct
values, so the label that exploded stands out. Parameters: `limit` (metrics per limiter, default
20), `format=text` for a plain-text table, `processor=<id>` for one limiter. The console panel
`cardinality` (`/api/console/cardinality`) serves the same reports, with `tenant=<id>` reserved
for per-tenant trackers.

Invariant: everything here reads limiter state at request or scrape time; nothing runs per point.
All limiters of one gateway share one route and one set of gauge families (`_Board`).
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from aiohttp import web

from metricgate.errors import ConfigError
from metricgate.model import AttributeValue, Resource
from metricgate.pipeline.host import Host
from metricgate.processors.cardinality_limit.tracker import (
    RESOURCE_LABEL,
    LabelValues,
    MetricStats,
)
from metricgate.telemetry.console import ConsolePanel
from metricgate.telemetry.metrics import SelfMetrics

if TYPE_CHECKING:
    from metricgate.processors.cardinality_limit.processor import CardinalityLimiter

PATH = "/debug/cardinality"
TOP_LABELS = 5
TOP_VALUES = 3
_DEFAULT_LIMIT = 20
_MAX_LIMIT = 10_000


class _Board:
    """The limiters of one gateway, behind one route and one set of gauges."""

    def __init__(self) -> None:
        self.limiters: list[CardinalityLimiter] = []

    def active_series(self) -> dict[tuple[str, ...], float]:
        out: dict[tuple[str, ...], float] = {}
        for limiter in self.limiters:
            key = (limiter.component_id,)
            out[key] = out.get(key, 0.0) + limiter.tracker.admitted_total
        return out

    def metric_series(self) -> dict[tuple[str, ...], float]:
        out: dict[tuple[str, ...], float] = {}
        for limiter in self.limiters:
            top = heapq.nlargest(
                limiter.config.telemetry_metrics,
                limiter.tracker.metrics.items(),
                key=lambda item: item[1].admitted,
            )
            for name, stats in top:
                key = (limiter.component_id, name)
                out[key] = out.get(key, 0.0) + stats.admitted
        return out

    def limits(self) -> dict[tuple[str, ...], float]:
        out: dict[tuple[str, ...], float] = {}
        for limiter in self.limiters:
            for scope, value in _limits(limiter):
                if value:
                    out[(limiter.component_id, scope)] = float(value)
        return out

    def reports(self, query: Mapping[str, str]) -> list[dict[str, Any]]:
        """The reports `query` asks for (`limit`, `processor`); ConfigError naming a bad one."""
        try:
            limit = int(query.get("limit", _DEFAULT_LIMIT))
            if not 1 <= limit <= _MAX_LIMIT:
                raise ValueError
        except ValueError:
            raise ConfigError(
                f"limit: expected 1..{_MAX_LIMIT}, got {query.get('limit')!r}"
            ) from None
        wanted = query.get("processor")
        return [
            report(limiter, limit)
            for limiter in self.limiters
            if wanted is None or limiter.component_id == wanted
        ]

    def console(self, query: Mapping[str, str]) -> dict[str, Any]:
        """The console's cardinality explorer: the reports, and the tenants they are split by.

        Per-tenant limits (`tenants.<id>.max_series`) will give a limiter one tracker per tenant,
        each report then naming its `tenant`; `tenant=<id>` selects those, and `tenants` lists
        them for the page's selector. Until then every report is gateway-wide and `tenants` empty.
        """
        reports = self.reports(query)
        tenants = sorted({str(r["tenant"]) for r in reports if r.get("tenant")})
        wanted = query.get("tenant")
        if wanted:
            reports = [r for r in reports if r.get("tenant") == wanted]
        return {"limiters": reports, "tenants": tenants}

    async def handle(self, request: web.Request) -> web.Response:
        try:
            reports = self.reports(request.query)
        except ConfigError as exc:
            return web.Response(status=400, text=f"{exc}\n")
        if request.query.get("format") == "text":
            return web.Response(text="".join(render_text(r) for r in reports) or "no limiters\n")
        return web.json_response({"limiters": reports}, dumps=lambda o: json.dumps(o, indent=1))


_BOARDS: WeakKeyDictionary[SelfMetrics, _Board] = WeakKeyDictionary()


def register(host: Host, limiter: CardinalityLimiter) -> None:
    """Publish `limiter` on the gateway's telemetry (gauges and the debug page)."""
    board = _BOARDS.get(host.telemetry)
    if board is None:
        board = _BOARDS[host.telemetry] = _Board()
        telemetry = host.telemetry
        telemetry.add_gauge(
            "metricgate_processor_active_series",
            "Active series a processor tracks (cardinality_limit: series passed in the window).",
            ["processor"],
            board.active_series,
        )
        telemetry.add_gauge(
            "metricgate_cardinality_series",
            "Active series passed per metric name (only the metrics with the most series).",
            ["processor", "metric"],
            board.metric_series,
        )
        telemetry.add_gauge(
            "metricgate_cardinality_limit",
            "Configured cardinality caps: max_series, max_series_per_metric, per_label:<label>.",
            ["processor", "scope"],
            board.limits,
        )
        host.add_route("GET", PATH, board.handle)
        host.add_console_panel("cardinality", ConsolePanel("Cardinality", board.console))
    board.limiters.append(limiter)


def unregister(limiter: CardinalityLimiter) -> None:
    """Stop reporting `limiter` (on shutdown); the route and gauge families stay."""
    for board in list(_BOARDS.values()):
        if limiter in board.limiters:
            board.limiters.remove(limiter)


def _limits(limiter: CardinalityLimiter) -> list[tuple[str, int]]:
    config = limiter.config
    return [
        ("max_series", config.max_series),
        ("max_series_per_metric", config.max_series_per_metric),
        *((f"per_label:{limit.label}", limit.max_series) for limit in config.label_limits),
    ]


def display(value: AttributeValue | Resource) -> str:
    """A label value as text; resources by service name and instance."""
    if isinstance(value, Resource):
        parts = [
            f"{key}={found}"
            for key in ("service.namespace", "service.name", "service.instance.id")
            if (found := value.get(key)) is not None
        ]
        return ",".join(parts) or repr(value)
    return value if isinstance(value, str) else json.dumps(value)


def _top_values(values: dict[Any, int], count: int) -> list[dict[str, Any]]:
    top = heapq.nlargest(count, values.items(), key=lambda item: item[1])
    return [{"value": display(value), "series": series} for value, series in top]


def _label_report(label: str, entry: LabelValues) -> dict[str, Any]:
    return {
        "label": label,
        "distinct_values": len(entry.values),
        "saturated": entry.untracked > 0,
        "top_values": _top_values(entry.values, TOP_VALUES),
    }


def _metric_report(limiter: CardinalityLimiter, name: str, stats: MetricStats) -> dict[str, Any]:
    labels = heapq.nlargest(
        TOP_LABELS,
        stats.labels.items(),
        key=lambda item: (len(item[1].values), item[1].untracked),
    )
    return {
        "metric": name,
        "series": stats.admitted,
        "refused_series": stats.refused,
        "limit": limiter.config.max_series_per_metric,
        "labels": [_label_report(label, entry) for label, entry in labels],
    }


def report(limiter: CardinalityLimiter, limit: int) -> dict[str, Any]:
    """One limiter's state: totals, caps (with top per-label values) and top metrics."""
    tracker, config = limiter.tracker, limiter.config
    top = heapq.nlargest(
        limit,
        tracker.metrics.items(),
        key=lambda item: (item[1].admitted + item[1].refused, item[1].refused),
    )
    return {
        "processor": limiter.component_id,
        "on_limit": config.on_limit,
        "window_seconds": config.window,
        "window_type": config.window_type,
        "active_series": tracker.admitted_total,
        "refused_series": tracker.refused_total,
        "metrics_tracked": len(tracker.metrics),
        "limits": {
            "max_series": config.max_series,
            "max_series_per_metric": config.max_series_per_metric,
            "per_label": [
                {
                    "label": label,
                    "max_series": cap,
                    "top_values": _top_values(counts, TOP_VALUES),
                }
                for (label, cap), counts in zip(
                    tracker.per_label, tracker.label_counts, strict=True
                )
            ],
        },
        "metrics": [_metric_report(limiter, name, stats) for name, stats in top],
    }


def _distinct(label: dict[str, Any]) -> str:
    count = label["distinct_values"]
    return f">={count}" if label["saturated"] else str(count)


def render_text(data: dict[str, Any]) -> str:
    """The report as an aligned plain-text table."""
    limits = data["limits"]
    caps = [f"max_series={limits['max_series'] or 'none'}"]
    caps.append(f"max_series_per_metric={limits['max_series_per_metric'] or 'none'}")
    caps.extend(f"{p['label']}={p['max_series'] or 'none'}" for p in limits["per_label"])
    lines = [
        f"{data['processor']}: {data['active_series']} active series, "
        f"{data['refused_series']} refused ({data['window_type']} window "
        f"{data['window_seconds']:g}s, on_limit={data['on_limit']})",
        "  limits: " + " ".join(caps),
    ]
    for per_label in limits["per_label"]:
        top = ", ".join(f"{v['value']}={v['series']}" for v in per_label["top_values"])
        lines.append(f"  top {per_label['label']} values: {top or '-'}")
    lines.append(f"  {'metric':<40} {'series':>9} {'refused':>9}  labels by distinct values")
    for metric in data["metrics"]:
        labels = "  ".join(f"{label['label']}={_distinct(label)}" for label in metric["labels"])
        lines.append(
            f"  {metric['metric']:<40} {metric['series']:>9} {metric['refused_series']:>9}  "
            f"{labels}"
        )
    if RESOURCE_LABEL in "".join(lines):
        lines.append(f"  ({RESOURCE_LABEL} counts distinct resources: pods, instances)")
    return "\n".join(lines) + "\n"
