"""Generated Grafana dashboards: structure, datasource wiring, variables, and PromQL that a real
Prometheus accepts and that names only metrics and labels that exist."""

from __future__ import annotations

import json
import re
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import yaml

from metricgate.catalog import CATALOG, build_dashboards, write_dashboards
from metricgate.catalog.dashboards import DATASOURCE_UID
from metricgate.catalog.rules import RECORDING_GROUPS
from metricgate.catalog.spec import MetricKind
from tests.catalog.conftest import as_plain_promql
from tests.support.prometheus import PrometheusServer

DASHBOARDS = build_dashboards()
PANEL_TYPES = {"timeseries", "stat", "heatmap"}
DATASOURCE_REF = {"type": "prometheus", "uid": "${datasource}"}

# metricgate's own metrics (STYLE.md naming) and their labels, plus the scrape job label.
GATEWAY_LABELS: dict[str, set[str]] = {
    "metricgate_receiver_accepted_points_total": {"receiver"},
    "metricgate_receiver_refused_points_total": {"receiver", "reason"},
    "metricgate_exporter_sent_points_total": {"exporter"},
    "metricgate_exporter_send_failed_points_total": {"exporter"},
    "metricgate_exporter_queue_size": {"exporter"},
    "metricgate_exporter_queue_capacity": {"exporter"},
    "metricgate_processor_active_series": {"processor"},
    "process_resident_memory_bytes": {"instance"},
}


def _catalog_labels() -> dict[str, set[str]]:
    labels: dict[str, set[str]] = {}
    for spec in CATALOG:
        if spec.kind is MetricKind.HISTOGRAM:
            labels[f"{spec.prometheus_name}_bucket"] = {*spec.labels, "le"}
        else:
            labels[spec.prometheus_name] = set(spec.labels)
    for group in RECORDING_GROUPS:
        for rule in group.rules:
            (by,) = re.findall(r"sum by \(([^)]*)\)", rule.expr)
            labels[rule.record] = {label.strip() for label in by.split(",")}
    for name, gateway in GATEWAY_LABELS.items():
        labels[name] = {*gateway, "job"}
    return labels


KNOWN_LABELS = _catalog_labels()
PROMQL_WORDS = {
    *("by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless"),
    *("sum", "avg", "min", "max", "count", "group", "topk", "bottomk", "quantile"),
}


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return list(dashboard["panels"])


def exprs(dashboard: dict[str, Any]) -> list[str]:
    return [target["expr"] for panel in panels(dashboard) for target in panel["targets"]]


def variables(dashboard: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {variable["name"]: variable for variable in dashboard["templating"]["list"]}


def all_exprs() -> list[str]:
    return [expr for dashboard in DASHBOARDS.values() for expr in exprs(dashboard)]


_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|\[[^\]]*\]|[a-zA-Z_:][a-zA-Z0-9_:]*|\S')
_IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def selectors(expr: str) -> list[tuple[str, set[str]]]:
    """(metric name, label names in its matchers) for every series selector in `expr`."""
    tokens = [token for token in _TOKEN.findall(expr) if not token.startswith("[")]
    out: list[tuple[str, set[str]]] = []
    i = 0
    while i < len(tokens):
        token, following = tokens[i], tokens[i + 1] if i + 1 < len(tokens) else ""
        if token in ("by", "without") and following == "(":
            i = tokens.index(")", i) + 1
            continue
        if _IDENT.fullmatch(token) and following != "(" and token not in PROMQL_WORDS:
            labels: set[str] = set()
            if following == "{":
                end = tokens.index("}", i)
                inner = tokens[i + 2 : end]
                labels = {
                    name
                    for name, after in pairwise(inner)
                    if _IDENT.fullmatch(name) and after in ("=", "!")
                }
                i = end
            out.append((token, labels))
        i += 1
    return out


def test_the_four_dashboards() -> None:
    titles = {document["title"] for document in DASHBOARDS.values()}
    assert titles == {
        "AI Agent Overview",
        "System Health & Performance",
        "Business Metrics & KPIs",
        "metricgate Health",
    }
    assert set(DASHBOARDS) == {f"{document['uid']}.json" for document in DASHBOARDS.values()}


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_layout_and_panel_types(name: str) -> None:
    dashboard = DASHBOARDS[name]
    assert isinstance(dashboard["schemaVersion"], int) and dashboard["schemaVersion"] > 0
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids)) and all(isinstance(i, int) and i > 0 for i in ids)
    cells: set[tuple[int, int]] = set()
    for panel in panels(dashboard):
        assert panel["type"] in PANEL_TYPES, panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["h"] > 0
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        area = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not area & cells, f"{panel['title']} overlaps another panel"
        cells |= area
        assert panel["targets"], panel["title"]
    assert "graph" not in json.dumps([p["type"] for p in panels(dashboard)])


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_every_panel_and_query_reads_the_datasource_variable(name: str) -> None:
    dashboard = DASHBOARDS[name]
    datasource = variables(dashboard)["datasource"]
    assert datasource["type"] == "datasource"
    assert datasource["query"] == "prometheus"
    assert datasource["current"]["value"] == DATASOURCE_UID
    for panel in panels(dashboard):
        assert panel["datasource"] == DATASOURCE_REF, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE_REF, panel["title"]
            assert target["refId"]
    for variable in variables(dashboard).values():
        if variable["type"] == "query":
            assert variable["datasource"] == DATASOURCE_REF


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_every_variable_is_used_and_queries_existing_labels(name: str) -> None:
    dashboard = DASHBOARDS[name]
    queries = [v for v in variables(dashboard).values() if v["type"] == "query"]
    assert queries
    for variable in queries:
        metric, label = re.fullmatch(r"label_values\((\w+), (\w+)\)", variable["query"]).groups()  # type: ignore[union-attr]
        assert label in KNOWN_LABELS[metric]
        assert variable["includeAll"] and variable["allValue"] == ".*"
        used = f'{variable["name"]}=~"${variable["name"]}"'
        assert any(used in expr for expr in exprs(dashboard)), f"${variable['name']} unused"


def test_agent_dashboards_filter_by_agent_type_and_provider() -> None:
    for name in ("metricgate-ai-agents.json", "metricgate-business.json"):
        assert {"agent_type", "provider"} <= set(variables(DASHBOARDS[name]))


def test_queries_name_only_existing_metrics_and_labels() -> None:
    checked = 0
    for expr in all_exprs():
        for metric, labels in selectors(expr):
            assert metric in KNOWN_LABELS, f"unknown metric {metric!r} in {expr}"
            assert labels <= KNOWN_LABELS[metric], f"{metric} has no {labels} in {expr}"
            checked += 1
        for by in re.findall(r"sum by \(([^)]*)\)", expr):
            names = {metric for metric, _ in selectors(expr)}
            for label in (part.strip() for part in by.split(",")):
                assert any(label in KNOWN_LABELS[m] for m in names), f"by {label} in {expr}"
    assert checked > 40


def test_every_recording_rule_feeds_a_dashboard() -> None:
    text = "\n".join(all_exprs())
    for group in RECORDING_GROUPS:
        for rule in group.rules:
            assert rule.record in text, f"{rule.record} is recorded but never shown"


def test_every_panel_query_is_accepted_by_prometheus(prometheus: PrometheusServer) -> None:
    """`query()` raises on any API error, so each expression must parse and evaluate."""
    for expr in all_exprs():
        plain = as_plain_promql(expr)
        assert "$" not in plain
        prometheus.query(plain)
    for dashboard in DASHBOARDS.values():
        for variable in variables(dashboard).values():
            if variable["type"] == "query":
                metric, label = re.findall(r"\w+", variable["query"])[1:]
                prometheus.query(f"group by ({label}) ({metric})")


def test_write_dashboards_and_provisioning(tmp_path: Path) -> None:
    written = write_dashboards(
        tmp_path, prometheus_url="http://prometheus:9090", dashboards_path="/dashboards"
    )
    relative = sorted(str(path.relative_to(tmp_path)) for path in written)
    assert relative == sorted(
        [f"dashboards/{name}" for name in DASHBOARDS]
        + ["provisioning/dashboards/dashboards.yml", "provisioning/datasources/datasource.yml"]
    )
    for name, document in DASHBOARDS.items():
        assert json.loads((tmp_path / "dashboards" / name).read_text()) == document
    datasources = yaml.safe_load((tmp_path / "provisioning/datasources/datasource.yml").read_text())
    (datasource,) = datasources["datasources"]
    assert (datasource["uid"], datasource["type"]) == (DATASOURCE_UID, "prometheus")
    assert datasource["url"] == "http://prometheus:9090"
    providers = yaml.safe_load((tmp_path / "provisioning/dashboards/dashboards.yml").read_text())
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/dashboards"
