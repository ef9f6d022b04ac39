"""`/debug/targets` on the telemetry server: Prometheus' targets and service-discovery pages.

JSON by default (`{"activeTargets": [...], "droppedTargets": [...]}`, Prometheus' API field names:
`labels`, `discoveredLabels`, `scrapePool`, `scrapeUrl`, `health`, `lastScrape`,
`lastScrapeDuration`, `lastError`), a readable HTML table with `?format=html` or when a browser
asks for `text/html`. One route serves every `prometheus` receiver of the gateway; under
`--workers N` it shows every worker's targets (each lists those it scrapes), or answers 503
while one cannot answer.

Invariant: rendering reads the managers' state and never changes it.
"""

from __future__ import annotations

import html
import json
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from metricgate.errors import UnavailableError
from metricgate.pipeline.host import RouteHandler
from metricgate.receivers.prometheus.manager import JobManager
from metricgate.telemetry.server import set_unavailable

Managers = Callable[[], Iterable[tuple[str, JobManager]]]


def targets_json(managers: Managers) -> dict[str, Any]:
    active: list[dict[str, Any]] = []
    dropped: list[dict[str, Any]] = []
    for receiver_id, manager in managers():
        for target, health in manager.health():
            active.append(
                {
                    "receiver": receiver_id,
                    "scrapePool": target.job,
                    "scrapeUrl": target.url,
                    "labels": dict(target.labels),
                    "discoveredLabels": dict(target.discovered),
                    "health": health.state,
                    "lastScrape": _time(health.last_scrape),
                    "lastScrapeDuration": round(health.duration, 6),
                    "lastError": health.error,
                    "scrapeInterval": f"{target.interval:g}s",
                    "scrapeTimeout": f"{target.timeout:g}s",
                    "samples": health.samples,
                }
            )
        for gone in manager.dropped:
            dropped.append(
                {
                    "receiver": receiver_id,
                    "scrapePool": gone.job,
                    "discoveredLabels": dict(gone.discovered),
                    "reason": gone.reason,
                }
            )
    return {"activeTargets": active, "droppedTargets": dropped}


def _time(seconds: float) -> str:
    if not seconds:
        return "0001-01-01T00:00:00Z"
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def merge_targets(parts: list[dict[str, Any]], _query: dict[str, str]) -> dict[str, Any]:
    """The pages of a `--workers N` set as one: each worker lists the targets it scrapes (every
    target has one owner), and every worker drops the same discovered targets."""
    active = [target for part in parts for target in part["activeTargets"]]
    active.sort(key=lambda t: (t["receiver"], t["scrapePool"], t["scrapeUrl"]))
    return {"activeTargets": active, "droppedTargets": parts[0]["droppedTargets"]}


def handler(read: Callable[[dict[str, str]], Awaitable[dict[str, Any]]]) -> RouteHandler:
    """The route: `read` gives the data (the whole set's, under `--workers N`)."""

    async def serve(request: web.Request) -> web.Response:
        try:
            data = await read({})
        except UnavailableError as exc:
            return set_unavailable(exc)
        wants_html = request.query.get("format") == "html" or (
            "text/html" in request.headers.get("Accept", "") and "format" not in request.query
        )
        if wants_html:
            return web.Response(text=_html(data), content_type="text/html")
        return web.Response(text=json.dumps(data, indent=1), content_type="application/json")

    return serve


def _labels(labels: dict[str, str]) -> str:
    return " ".join(
        f'<span class="l">{html.escape(k)}="{html.escape(v)}"</span>' for k, v in labels.items()
    )


def _html(data: dict[str, Any]) -> str:
    rows = []
    for target in data["activeTargets"]:
        state = target["health"]
        rows.append(
            f'<tr class="{state}"><td>{html.escape(target["scrapePool"])}</td>'
            f'<td><a href="{html.escape(target["scrapeUrl"])}">'
            f"{html.escape(target['scrapeUrl'])}</a></td>"
            f"<td>{state}</td><td>{_labels(target['labels'])}</td>"
            f"<td>{html.escape(target['lastScrape'])}</td>"
            f"<td>{target['lastScrapeDuration']:.3f}s</td>"
            f"<td>{html.escape(target['lastError'])}</td>"
            f"<td><details><summary>before relabeling</summary>"
            f"{_labels(target['discoveredLabels'])}</details></td></tr>"
        )
    dropped = [
        f"<tr><td>{html.escape(gone['scrapePool'])}</td>"
        f"<td>{_labels(gone['discoveredLabels'])}</td><td>{html.escape(gone['reason'])}</td></tr>"
        for gone in data["droppedTargets"]
    ]
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>metricgate targets</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; }}
table {{ border-collapse: collapse; width: 100%; margin-bottom: 2em; }}
td, th {{ border: 1px solid #ccc; padding: 4px 6px; vertical-align: top; font-size: 13px; }}
th {{ background: #f0f0f0; text-align: left; }}
tr.up td:nth-child(3) {{ color: #080; font-weight: bold; }}
tr.down td:nth-child(3) {{ color: #c00; font-weight: bold; }}
.l {{ display: inline-block; background: #eef; border-radius: 3px; padding: 0 4px; margin: 1px; }}
</style></head><body>
<h1>Targets ({len(data["activeTargets"])})</h1>
<table><tr><th>job</th><th>endpoint</th><th>state</th><th>labels</th><th>last scrape</th>
<th>duration</th><th>error</th><th>discovered labels</th></tr>
{"".join(rows)}
</table>
<h1>Dropped targets ({len(data["droppedTargets"])})</h1>
<table><tr><th>job</th><th>discovered labels</th><th>why</th></tr>
{"".join(dropped)}
</table></body></html>
"""
