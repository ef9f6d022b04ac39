"""Panel, query, variable and dashboard builders shared by the catalog's Grafana dashboards.

Thin wrappers over grafana-foundation-sdk that fix what every metricgate dashboard agrees on:
each panel and query reads the `${datasource}` variable (type prometheus, defaulting to the
provisioned datasource `DATASOURCE_UID`), and only timeseries, stat and heatmap panels exist.

Invariant: the dashboard builder places panels left to right and wraps only once a row reaches
24 columns, so the widths of each row of panels must add up to exactly 24.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from metricgate.extras import MissingExtraError

try:
    from grafana_foundation_sdk.builders import common as common_builders
    from grafana_foundation_sdk.builders import dashboard as dash
    from grafana_foundation_sdk.builders import heatmap, prometheus, stat, timeseries
    from grafana_foundation_sdk.cog.builder import Builder
    from grafana_foundation_sdk.models import common
    from grafana_foundation_sdk.models import dashboard as dashboard_models
    from grafana_foundation_sdk.models import heatmap as heatmap_models
    from grafana_foundation_sdk.models.dashboard import (
        DataSourceRef,
        VariableOption,
        VariableRefresh,
        VariableSort,
    )
    from grafana_foundation_sdk.models.prometheus import PromQueryFormat
except ImportError as exc:
    raise MissingExtraError.of(exc, "catalog", "the Grafana dashboards") from exc

__all__ = [
    "DATASOURCE",
    "DATASOURCE_NAME",
    "DATASOURCE_UID",
    "DATASOURCE_VARIABLE",
    "assemble_dashboard",
    "datasource_variable",
    "heatmap_panel",
    "label_variable",
    "quantile_queries",
    "query",
    "rate_expr",
    "stat_panel",
    "timeseries_panel",
]

DATASOURCE_UID: Final = "metricgate-prometheus"
"""The uid of the provisioned Prometheus datasource (see `dashboards.datasource_provisioning`)."""
DATASOURCE_NAME: Final = "Prometheus (metricgate)"

DATASOURCE_VARIABLE = "datasource"
DATASOURCE = DataSourceRef(type_val="prometheus", uid=f"${{{DATASOURCE_VARIABLE}}}")
"""What every panel and query reads from: the datasource the dashboard's variable selects."""


def datasource_variable(default_uid: str, default_name: str) -> dash.DatasourceVariable:
    """The `datasource` variable: any Prometheus datasource, defaulting to the provisioned one."""
    return (
        dash.DatasourceVariable(DATASOURCE_VARIABLE)
        .label("Data source")
        .type("prometheus")
        .current(VariableOption(selected=True, text=default_name, value=default_uid))
    )


def label_variable(name: str, metric: str, label: str | None = None) -> dash.QueryVariable:
    """A multi-value variable over the values of `label` (default `name`) on `metric`.

    "All" sends `.*`, so panels filter with `label=~"$name"` and match every series.
    """
    return (
        dash.QueryVariable(name)
        .label(name.replace("_", " ").capitalize())
        .datasource(DATASOURCE)
        .query(f"label_values({metric}, {label or name})")
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(VariableOption(selected=True, text="All", value="$__all"))
    )


def query(
    expr: str, legend: str = "", ref_id: str = "A", *, heatmap_format: bool = False
) -> prometheus.Dataquery:
    """A Prometheus range query on the `${datasource}` variable."""
    target = (
        prometheus.Dataquery()
        .datasource(DATASOURCE)
        .expr(expr)
        .ref_id(ref_id)
        .range()
        .legend_format(legend or "__auto")
    )
    if heatmap_format:
        target = target.format(PromQueryFormat.HEATMAP)
    return target


def timeseries_panel(
    title: str,
    description: str,
    unit: str,
    targets: Sequence[prometheus.Dataquery],
    *,
    width: int = 12,
    height: int = 8,
) -> timeseries.Panel:
    """A line chart with a table legend showing mean and last value."""
    return (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(list(targets))
        .unit(unit)
        .span(width)
        .height(height)
        .line_width(1)
        .fill_opacity(10)
        .legend(
            common_builders.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
            .calcs(["mean", "lastNotNull"])
        )
        .tooltip(
            common_builders.VizTooltipOptions()
            .mode(common.TooltipDisplayMode.MULTI)
            .sort(common.SortOrder.DESCENDING)
        )
    )


def stat_panel(
    title: str,
    description: str,
    unit: str,
    target: prometheus.Dataquery,
    *,
    width: int = 6,
    height: int = 4,
) -> stat.Panel:
    """A single big number: the last value of `target`, with a sparkline."""
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .with_target(target)
        .unit(unit)
        .span(width)
        .height(height)
        .graph_mode(common.BigValueGraphMode.AREA)
        .color_mode(common.BigValueColorMode.VALUE)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]))
    )


def heatmap_panel(
    title: str,
    description: str,
    unit: str,
    target: prometheus.Dataquery,
    *,
    width: int = 12,
    height: int = 8,
) -> heatmap.Panel:
    """A heatmap of pre-bucketed data: `target` must return one series per `le` bucket."""
    return (
        heatmap.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .with_target(target)
        .span(width)
        .height(height)
        .calculate(False)
        .y_axis(heatmap.YAxisConfig().unit(unit))
        .rows_frame(heatmap.RowsHeatmapOptions().layout(common.HeatmapCellLayout.LE))
        .color(
            heatmap.HeatmapColorOptions()
            .mode(heatmap_models.HeatmapColorMode.SCHEME)
            .scheme("Oranges")
            .steps(64)
        )
        .show_tooltip()
        .show_legend()
    )


def rate_expr(selector: str) -> str:
    """`rate()` over Grafana's `$__rate_interval` (at least four scrape intervals)."""
    return f"rate({selector}[$__rate_interval])"


def quantile_queries(buckets: str, by: str = "") -> list[prometheus.Dataquery]:
    """p50 and p95 queries over a bucket-rate expression, grouped by `by` (plus `le`)."""
    group = f"{by}, le" if by else "le"
    legend = f"{{{{{by}}}}} " if by else ""
    return [
        query(f"histogram_quantile({q}, sum by ({group}) ({buckets}))", f"{legend}p{p}", ref)
        for q, p, ref in ((0.5, 50, "A"), (0.95, 95, "B"))
    ]


def assemble_dashboard(
    title: str,
    uid: str,
    description: str,
    variables: Sequence[Builder[dashboard_models.VariableModel]],
    panels: Sequence[Builder[dashboard_models.Panel]],
) -> dash.Dashboard:
    """A dashboard with the `datasource` variable, then `variables`, then `panels` laid out in
    rows of 24 columns (each row's widths must add up to 24)."""
    builder = (
        dash.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["metricgate", "generated"])
        .editable()
        .time("now-6h", "now")
        .refresh("30s")
        .timezone("browser")
        .tooltip(dashboard_models.DashboardCursorSync.CROSSHAIR)
        .with_variable(datasource_variable(DATASOURCE_UID, DATASOURCE_NAME))
    )
    for variable in variables:
        builder = builder.with_variable(variable)
    for panel in panels:
        builder = builder.with_panel(panel)
    return builder
