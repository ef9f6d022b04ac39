"""The catalog's dashboards as CloudWatch dashboard bodies, and putting them with PutDashboard.

Charts are CloudWatch Metrics Insights queries over what the `cloudwatch` exporter writes with
its defaults: the metric under its OTLP name (`agent.operations`) in the exporter's `namespace`,
with every data point attribute as a dimension (`SCHEMA("<namespace>", agent_id, agent_type, ...)`
selects exactly that dimension set, so dimension rollups or `metric_declarations` need their own
charts). Counters are per-period deltas there (`SUM`), gauges values (`AVG`, or what the chart
says), histograms statistic sets (`AVG` is sum / count).

Pushing is `PutDashboard`, which creates or replaces a dashboard by name, through botocore (the
`cloudwatch` extra), with credentials found the AWS way.

Invariant: a body is what CloudWatch's PutDashboard accepts (metric widgets with a region and
Metrics Insights expressions), and queries only the namespace, names and dimensions the
cloudwatch exporter writes for the catalog.
"""

from __future__ import annotations

import json
from typing import Any

from metricgate.catalog.charts import BOARDS, Chart, Reading
from metricgate.extras import require

__all__ = ["build_cloudwatch_dashboards", "chart_expression", "push_cloudwatch_dashboards"]

NAME_PREFIX = "metricgate-"
_FUNCTION = {Reading.COUNT: "SUM", Reading.MEAN: "AVG"}
_PERIOD = 300
_GRID = 24


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def chart_expression(chart: Chart, namespace: str) -> str:
    """The Metrics Insights query of `chart` over the exporter's `namespace`."""
    function = _FUNCTION.get(chart.reading) or chart.combine.upper()
    schema = ", ".join([_quote(namespace), *(_quote(label) for label in chart.metric.labels)])
    query = f"SELECT {function}({_quote(chart.metric.otlp_name)}) FROM SCHEMA({schema})"
    conditions = [f"{_quote(k)} = {_literal(v)}" for k, v in chart.where]
    conditions += [f"{_quote(k)} != {_literal(v)}" for k, v in chart.where_not]
    if conditions:
        query += " WHERE " + " AND ".join(conditions)
    if chart.by:
        query += " GROUP BY " + ", ".join(_quote(label) for label in chart.by)
    return query


def _widget(chart: Chart, namespace: str, region: str, x: int, y: int) -> dict[str, Any]:
    width = 6 if chart.single_value else 12
    return {
        "type": "metric",
        "x": x,
        "y": y,
        "width": width,
        "height": 4 if chart.single_value else 6,
        "properties": {
            "title": chart.title,
            "region": region,
            "view": "singleValue" if chart.single_value else "timeSeries",
            "stacked": False,
            "period": _PERIOD,
            "metrics": [
                [{"expression": chart_expression(chart, namespace), "id": "q1", "label": ""}]
            ],
        },
    }


def build_cloudwatch_dashboards(namespace: str, region: str) -> dict[str, dict[str, Any]]:
    """Dashboard name -> its body, for the exporter's `namespace`, shown in `region`."""
    bodies = {}
    for board in BOARDS:
        widgets = [
            {
                "type": "text",
                "x": 0,
                "y": 0,
                "width": _GRID,
                "height": 2,
                "properties": {
                    "markdown": f"# {board.title}\nThe AI-agent metric catalog in namespace "
                    f"`{namespace}`, as the metricgate cloudwatch exporter writes it."
                },
            }
        ]
        x, y, row_height = 0, 2, 0
        for chart in board.charts:
            widget = _widget(chart, namespace, region, x, y)
            if x + widget["width"] > _GRID:
                x, y, row_height = 0, y + row_height, 0
                widget["x"], widget["y"] = x, y
            widgets.append(widget)
            x += widget["width"]
            row_height = max(row_height, widget["height"])
        bodies[NAME_PREFIX + board.slug] = {"widgets": widgets}
    return bodies


def push_cloudwatch_dashboards(
    bodies: dict[str, dict[str, Any]], region: str, endpoint: str = ""
) -> list[str]:
    """PutDashboard each body; returns one line per dashboard. Raises `RuntimeError` with
    CloudWatch's answer when a call fails or reports validation messages."""
    session = require("botocore.session", "cloudwatch", "pushing CloudWatch dashboards")
    exceptions = require("botocore.exceptions", "cloudwatch", "pushing CloudWatch dashboards")
    client = session.get_session().create_client(
        "cloudwatch", region_name=region, endpoint_url=endpoint or None
    )
    lines = []
    for name, body in bodies.items():
        try:
            answer = client.put_dashboard(DashboardName=name, DashboardBody=json.dumps(body))
        except (exceptions.BotoCoreError, exceptions.ClientError) as exc:
            raise RuntimeError(f"CloudWatch PutDashboard {name}: {exc}") from None
        messages = answer.get("DashboardValidationMessages") or []
        if messages:
            raise RuntimeError(f"CloudWatch PutDashboard {name}: {messages}")
        lines.append(f"put {name} ({region})")
    return lines
