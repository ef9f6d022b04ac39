"""What the limiters tell operators: their own metrics, the `/debug/cardinality` page and the
operator console's cardinality explorer.

`GET /debug/cardinality` on the telemetry address lists, per limiter, the metrics with the most
series seen in the window (passed + refused) and, for each, the labels with the most distinct
values, so the label that exploded stands out. Parameters: `limit` (metrics per limiter, default
20), `format=text` for a plain-text table, `processor=<id>` for one limiter, `tenant=<id>` for
one tenant. A limiter keyed by tenant has one report per budget: its tenants' (with `tenant`),
and the data without a tenant when there is any. Under `--workers N` the page merges every
worker's reports (`merge_reports`), and so does the console panel.
The console panel `cardinality` (`/api/console/cardinality`) serves the same reports, with the
tenants for its selector.

Invariant: everything here reads limiter state at request or scrape time; nothing runs per point.
All limiters of one gateway share one route and one set of gauge readers (`_Board`, the host's).
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web

from metricgate.errors import ConfigError, UnavailableError
from metricgate.model import AttributeValue, Resource
from metricgate.pipeline.exchange import Query, WholeView
from metricgate.pipeline.host import Host
from metricgate.processors.cardinality_limit.budgets import Budget
from metricgate.processors.cardinality_limit.tracker import (
    RESOURCE_LABEL,
    LabelValues,
    MetricStats,
)
from metricgate.telemetry.console import ConsolePanel
from metricgate.telemetry.metrics import Counter, SelfMetrics
from metricgate.telemetry.server import set_unavailable

if TYPE_CHECKING:
    from metricgate.processors.cardinality_limit.processor import CardinalityLimiter

PATH = "/debug/cardinality"
TOP_LABELS = 5
TOP_VALUES = 3
_DEFAULT_LIMIT = 20
_MAX_LIMIT = 10_000


class Counters:
    """The limiters' own counters (their drops go to the core's `processor_dropped`)."""

    def __init__(self, telemetry: SelfMetrics) -> None:
        self.refused_series: Counter = telemetry.counter(
            "metricgate_cardinality_refused_series",
            "New series a cardinality limiter refused (folded or dropped), by metric and cap.",
            ["processor", "metric", "reason"],
        )
        self.tenant_refused_points: Counter = telemetry.counter(
            "metricgate_cardinality_tenant_refused_points",
            "Data points of series a cardinality limiter refused, by tenant (its own budget).",
            ["processor", "tenant"],
        )
        self.folded_points: Counter = telemetry.counter(
            "metricgate_cardinality_folded_points",
            "Data points of refused series folded into a metric's overflow series.",
            ["processor", "metric"],
        )


class _Board:
    """The limiters of one gateway, behind one route and one set of gauge readers."""

    def __init__(self, host: Host) -> None:
        self.limiters: list[CardinalityLimiter] = []
        telemetry = host.telemetry
        telemetry.gauge(
            "metricgate_processor_active_series",
            "Active series a processor tracks (cardinality_limit: series passed in the window).",
            ["processor"],
        ).observe(self.active_series)
        telemetry.gauge(
            "metricgate_cardinality_series",
            "Active series passed per metric name (only the metrics with the most series).",
            ["processor", "metric"],
        ).observe(self.metric_series)
        telemetry.gauge(
            "metricgate_cardinality_limit",
            "Configured cardinality caps: max_series, max_series_per_metric, per_label:<label>.",
            ["processor", "scope"],
        ).observe(self.limits)
        telemetry.gauge(
            "metricgate_cardinality_tenant_series",
            "Active series passed per tenant (each tenant's own budget).",
            ["processor", "tenant"],
        ).observe(self.tenant_series)
        telemetry.gauge(
            "metricgate_cardinality_tenant_limit",
            "max_series of each tenant's budget (tenants.<id>.max_series, or the default).",
            ["processor", "tenant"],
        ).observe(self.tenant_limits)
        self.view = WholeView(host.exchange, "debug/cardinality", self.reports, merge_reports)
        host.add_route("GET", PATH, self.handle)
        host.add_console_panel("cardinality", ConsolePanel("Cardinality", self.console))

    def active_series(self) -> dict[tuple[str, ...], float]:
        out: dict[tuple[str, ...], float] = {}
        for limiter in self.limiters:
            key = (limiter.component_id,)
            for budget in limiter.budgets.all():
                out[key] = out.get(key, 0.0) + budget.tracker.admitted_total
        return out

    def metric_series(self) -> dict[tuple[str, ...], float]:
        out: dict[tuple[str, ...], float] = {}
        for limiter in self.limiters:
            admitted: dict[str, int] = {}
            for budget in limiter.budgets.all():
                for name, stats in budget.tracker.metrics.items():
                    admitted[name] = admitted.get(name, 0) + stats.admitted
            top = heapq.nlargest(
                limiter.config.telemetry_metrics, admitted.items(), key=lambda item: item[1]
            )
            for name, count in top:
                key = (limiter.component_id, name)
                out[key] = out.get(key, 0.0) + count
        return out

    def tenant_series(self) -> dict[tuple[str, ...], float]:
        return {
            (limiter.component_id, tenant): float(budget.tracker.admitted_total)
            for limiter in self.limiters
            for tenant, budget in limiter.budgets.tenants.items()
        }

    def tenant_limits(self) -> dict[tuple[str, ...], float]:
        return {
            (limiter.component_id, tenant): float(budget.max_series)
            for limiter in self.limiters
            for tenant, budget in limiter.budgets.tenants.items()
            if budget.max_series
        }

    def limits(self) -> dict[tuple[str, ...], float]:
        out: dict[tuple[str, ...], float] = {}
        for limiter in self.limiters:
            for scope, value in _limits(limiter):
                if value:
                    out[(limiter.component_id, scope)] = float(value)
        return out

    def reports(self, query: Mapping[str, str]) -> list[dict[str, Any]]:
        """The reports `query` asks for (`limit`, `processor`, `tenant`); ConfigError naming a bad
        one."""
        limit = _limit(query)
        wanted = query.get("processor")
        tenant = query.get("tenant")
        return [
            report(limiter, limit, budget)
            for limiter in self.limiters
            if wanted is None or limiter.component_id == wanted
            for budget in reported(limiter)
            if tenant is None or budget.tenant == tenant
        ]

    async def console(self, query: Mapping[str, str]) -> dict[str, Any]:
        """The console's cardinality explorer: the reports (one per tenant's budget, each naming
        its `tenant`; `tenant=<id>` selects one), and every tenant for the page's selector."""
        every = await self.view.read({k: v for k, v in query.items() if k != "tenant"})
        tenants = sorted({str(r["tenant"]) for r in every if r.get("tenant")})
        wanted = query.get("tenant")
        reports = [r for r in every if r.get("tenant") == wanted] if wanted else every
        return {"limiters": reports, "tenants": tenants}

    async def handle(self, request: web.Request) -> web.Response:
        try:
            reports = await self.view.read(dict(request.query))
        except ConfigError as exc:
            return web.Response(status=400, text=f"{exc}\n")
        except UnavailableError as exc:
            return set_unavailable(exc)
        if request.query.get("format") == "text":
            return web.Response(text="".join(render_text(r) for r in reports) or "no limiters\n")
        return web.json_response({"limiters": reports}, dumps=lambda o: json.dumps(o, indent=1))


def _limit(query: Mapping[str, str]) -> int:
    try:
        limit = int(query.get("limit", _DEFAULT_LIMIT))
        if not 1 <= limit <= _MAX_LIMIT:
            raise ValueError
    except ValueError:
        raise ConfigError(f"limit: expected 1..{_MAX_LIMIT}, got {query.get('limit')!r}") from None
    return limit


def merge_reports(parts: list[list[dict[str, Any]]], query: Query) -> list[dict[str, Any]]:
    """The reports of a `--workers N` set as one per limiter budget: each metric's series live
    in one worker, so its entry is taken as it is and the top `limit` are chosen again; totals
    are summed, and so are the per-label top values each worker reported (an approximation:
    per-label caps count per worker)."""
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for part in parts:
        for found in part:
            key = (found["processor"], found.get("tenant", ""))
            known = merged.get(key)
            if known is None:
                merged[key] = json.loads(json.dumps(found))  # a copy this merge may change
                continue
            for total in ("active_series", "refused_series", "metrics_tracked"):
                known[total] += found[total]
            known["metrics"] += found["metrics"]
            for mine, theirs in zip(
                known["limits"]["per_label"], found["limits"]["per_label"], strict=True
            ):
                mine["top_values"] = _summed_values(mine["top_values"], theirs["top_values"])
    limit = _limit(query)
    for found in merged.values():
        found["metrics"] = heapq.nlargest(
            limit,
            found["metrics"],
            key=lambda m: (m["series"] + m["refused_series"], m["refused_series"]),
        )
    return list(merged.values())


def _summed_values(
    mine: list[dict[str, Any]], theirs: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    counts: dict[str, int] = {}
    for entry in (*mine, *theirs):
        counts[entry["value"]] = counts.get(entry["value"], 0) + entry["series"]
    top = heapq.nlargest(TOP_VALUES, counts.items(), key=lambda item: item[1])
    return [{"value": value, "series": series} for value, series in top]


def register(host: Host, limiter: CardinalityLimiter) -> None:
    """Publish `limiter` on the gateway's telemetry (gauges and the debug page)."""
    host.shared(_Board).limiters.append(limiter)


def unregister(host: Host, limiter: CardinalityLimiter) -> None:
    """Stop reporting `limiter` (on shutdown); the route and gauge families stay."""
    board = host.shared(_Board)
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


def reported(limiter: CardinalityLimiter) -> list[Budget]:
    """The budgets of `limiter` worth a report: every tenant's, and the data without a tenant
    unless tenants are all there is."""
    budgets = limiter.budgets
    shared = budgets.shared
    tenants = sorted(budgets.tenants.values(), key=lambda budget: budget.tenant)
    keep_shared = not tenants or shared.tracker.admitted_total or shared.tracker.refused_total
    return [shared, *tenants] if keep_shared else tenants


def report(limiter: CardinalityLimiter, limit: int, budget: Budget | None = None) -> dict[str, Any]:
    """One budget's state (default: the data without a tenant): totals, caps (with top
    per-label values) and top metrics."""
    budget = budget or limiter.budgets.shared
    tracker, config = budget.tracker, limiter.config
    top = heapq.nlargest(
        limit,
        tracker.metrics.items(),
        key=lambda item: (item[1].admitted + item[1].refused, item[1].refused),
    )
    tenant = {"tenant": budget.tenant} if budget.tenant else {}
    return {
        "processor": limiter.component_id,
        **tenant,
        "on_limit": config.on_limit,
        "window_seconds": config.window,
        "window_type": config.window_type,
        "active_series": tracker.admitted_total,
        "refused_series": tracker.refused_total,
        "metrics_tracked": len(tracker.metrics),
        "limits": {
            "max_series": budget.max_series,
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
    who = f" tenant {data['tenant']}" if "tenant" in data else ""
    lines = [
        f"{data['processor']}{who}: {data['active_series']} active series, "
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
