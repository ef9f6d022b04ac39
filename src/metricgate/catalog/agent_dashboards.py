"""The "AI Agent Overview" and "Business Metrics & KPIs" dashboards.

Invariant: every panel filters with both template variables (`agent_type`, `provider`) wherever
its metric has those labels, and reads recording rules of `metricgate.catalog.rules` by name.
"""

from __future__ import annotations

from metricgate.catalog.panels import (
    assemble_dashboard,
    heatmap_panel,
    label_variable,
    quantile_queries,
    query,
    rate_expr,
    stat_panel,
    timeseries_panel,
)
from metricgate.extras import MissingExtraError

try:
    from grafana_foundation_sdk.builders import dashboard as dash
except ImportError as exc:
    raise MissingExtraError.of(exc, "catalog", "the Grafana dashboards") from exc

__all__ = ["agent_overview", "business_kpis"]

# Filters for the template variables; "All" sends `.*`, which matches every value.
_AGENT = 'agent_type=~"$agent_type", provider=~"$provider"'

# Selectors over the recording rules (metricgate.catalog.rules), filtered by the variables.
_OPS = f"agent_type_provider:agent_operations:rate5m{{{_AGENT}}}"
_OPS_1H = f"agent_type_provider:agent_operations:rate1h{{{_AGENT}}}"
_OPS_ALL = f"agent_type_provider_status:agent_operations:rate5m{{{_AGENT}}}"
_OPS_ERROR = f'agent_type_provider_status:agent_operations:rate5m{{status="error", {_AGENT}}}'
_OPS_SUCCESS = f'agent_type_provider_status:agent_operations:rate5m{{status="success", {_AGENT}}}'
_EXEC_BUCKETS = f"agent_type_provider:agent_execution_duration_seconds_bucket:rate5m{{{_AGENT}}}"
_TOKENS = f'agent_type_provider_token_type:agent_token_usage:rate5m{{token_type="total", {_AGENT}}}'
_TOKENS_1H = 'provider:agent_token_usage:rate1h{provider=~"$provider"}'
_COST_1H = f"agent_type_provider:agent_cost:rate1h{{{_AGENT}}}"
# Raw series, for panels that want Grafana's resolution-dependent window.
_RAW_OPS = f"agent_operations_total{{{_AGENT}}}"
_RAW_ACTIVE = f"agent_active_count{{{_AGENT}}}"


def agent_overview() -> dash.Dashboard:
    """Active agents, operation rates, execution time, token usage and cost."""
    return assemble_dashboard(
        "AI Agent Overview",
        "metricgate-ai-agents",
        "What agents do, how long it takes, and what it costs.",
        [
            label_variable("agent_type", "agent_operations_total"),
            label_variable("provider", "agent_operations_total"),
        ],
        [
            stat_panel(
                "Active agents",
                "Agents running now.",
                "short",
                query(f"sum({_RAW_ACTIVE})"),
            ),
            stat_panel(
                "Operations / s",
                "All agent operations, 5m rate.",
                "ops",
                query(f"sum({_OPS})"),
            ),
            stat_panel(
                "Error ratio",
                "Share of operations with status=error, 5m rate.",
                "percentunit",
                query(f"sum({_OPS_ERROR}) / sum({_OPS_ALL})"),
            ),
            stat_panel(
                "Cost per hour",
                "Spend at the last hour's rate.",
                "currencyUSD",
                query(f"sum({_COST_1H}) * 3600"),
            ),
            timeseries_panel(
                "Operations by agent type / operation",
                "Operations per second.",
                "ops",
                [
                    query(
                        f"sum by (agent_type, operation) ({rate_expr(_RAW_OPS)})",
                        "{{agent_type}} / {{operation}}",
                    )
                ],
            ),
            timeseries_panel(
                "Active agents by type",
                "Agents running now.",
                "short",
                [
                    query(
                        f"sum by (agent_type, provider) ({_RAW_ACTIVE})",
                        "{{agent_type}} ({{provider}})",
                    )
                ],
            ),
            heatmap_panel(
                "Execution duration",
                "Task executions per second in each duration bucket.",
                "s",
                query(f"sum by (le) ({_EXEC_BUCKETS})", "{{le}}", heatmap_format=True),
            ),
            timeseries_panel(
                "Execution time by agent type",
                "p50 and p95 of one task execution.",
                "s",
                quantile_queries(_EXEC_BUCKETS, "agent_type"),
            ),
            timeseries_panel(
                "Token usage by provider",
                "Tokens per second (token_type=total).",
                "short",
                [query(f"sum by (provider) ({_TOKENS})", "{{provider}}")],
            ),
            timeseries_panel(
                "Cost per hour by provider",
                "US dollars per hour at the last hour's rate.",
                "currencyUSD",
                [query(f"sum by (provider) ({_COST_1H}) * 3600", "{{provider}}")],
            ),
            timeseries_panel(
                "Agent memory by namespace",
                "Bytes held in agent memory stores.",
                "bytes",
                [
                    query(
                        'sum by (namespace) (agent_memory_usage_bytes{agent_type=~"$agent_type"})',
                        "{{namespace}}",
                    )
                ],
                width=8,
            ),
            timeseries_panel(
                "Context retrieval p95",
                "p95 time to retrieve context, by retrieval type.",
                "s",
                [
                    query(
                        "histogram_quantile(0.95, sum by (retrieval_type, le) "
                        f"({rate_expr('context_retrieval_duration_seconds_bucket')}))",
                        "{{retrieval_type}}",
                    )
                ],
                width=8,
            ),
            timeseries_panel(
                "Task queue depth",
                "Tasks waiting, by queue and priority.",
                "short",
                [
                    query(
                        "sum by (queue_type, priority) (task_queue_depth)",
                        "{{queue_type}} / {{priority}}",
                    )
                ],
                width=8,
            ),
        ],
    )


def business_kpis() -> dash.Dashboard:
    """Sessions, feature usage, agent success ratio and unit cost."""
    return assemble_dashboard(
        "Business Metrics & KPIs",
        "metricgate-business",
        "Engagement, feature adoption, agent success and unit cost.",
        [
            label_variable("agent_type", "agent_operations_total"),
            label_variable("provider", "agent_operations_total"),
        ],
        [
            stat_panel(
                "Active user sessions",
                "Sessions open now.",
                "short",
                query("sum(user_sessions_active)"),
            ),
            stat_panel(
                "Agent success ratio",
                "Share of operations with status=success, 5m rate.",
                "percentunit",
                query(f"sum({_OPS_SUCCESS}) / sum({_OPS_ALL})"),
            ),
            stat_panel(
                "Projected daily cost",
                "Spend per day at the last hour's rate.",
                "currencyUSD",
                query(f"sum({_COST_1H}) * 86400"),
            ),
            stat_panel(
                "Tokens per hour",
                "token_type=total at the last hour's rate.",
                "short",
                query(f"sum({_TOKENS_1H}) * 3600"),
            ),
            timeseries_panel(
                "Active user sessions",
                "Sessions open.",
                "short",
                [query("sum(user_sessions_active)", "sessions")],
            ),
            timeseries_panel(
                "Feature usage per hour",
                "Uses per hour at the last hour's rate.",
                "short",
                [
                    query(
                        "sum by (feature) (feature_user_type:feature_usage:rate1h) * 3600",
                        "{{feature}}",
                    )
                ],
            ),
            timeseries_panel(
                "Cost per operation by provider",
                "US dollars per agent operation, 1h window.",
                "currencyUSD",
                [
                    query(
                        f"sum by (provider) ({_COST_1H}) / sum by (provider) ({_OPS_1H})",
                        "{{provider}}",
                    )
                ],
            ),
            timeseries_panel(
                "Success ratio by agent type",
                "Share of operations with status=success.",
                "percentunit",
                [
                    query(
                        f"sum by (agent_type) ({_OPS_SUCCESS}) / sum by (agent_type) ({_OPS_ALL})",
                        "{{agent_type}}",
                    )
                ],
            ),
            timeseries_panel(
                "Task outcomes",
                "Finished tasks per second, by status.",
                "ops",
                [query("sum by (status) (task_type_status:task_executions:rate5m)", "{{status}}")],
            ),
            timeseries_panel(
                "Tokens per hour by provider",
                "token_type=total at the last hour's rate.",
                "short",
                [query(f"sum by (provider) ({_TOKENS_1H}) * 3600", "{{provider}}")],
            ),
        ],
    )
