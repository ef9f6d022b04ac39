"""Prometheus recording and alerting rules for the AI-agent catalog, generated as YAML files.

Recording rules follow the `level:metric:operations` convention and precompute what the
dashboards (`metricgate.catalog.dashboards`) query; alerts read raw series, so they work without
the recording file loaded.

Invariant: every expression aggregates with `sum by (<catalog labels>)`. Series scraped from
metricgate also carry `job`, `instance`, `otel_scope_name` and `otel_scope_version` (and maybe
more), so a rule must never depend on the full label set, and both sides of a ratio are
aggregated by the same labels: otherwise the division matches nothing and the alert never fires.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Generic, Literal, TypeVar

import yaml

__all__ = [
    "ALERT_FILE",
    "DEFAULT_RUNBOOK_BASE_URL",
    "RECORDING_FILE",
    "RECORDING_GROUPS",
    "AlertRule",
    "RecordingRule",
    "RuleGroup",
    "alert_groups",
    "render_rule_file",
    "write_rules",
]

RECORDING_FILE: Final = "agent-recording.rules.yml"
ALERT_FILE: Final = "agent-alerts.rules.yml"
DEFAULT_RUNBOOK_BASE_URL: Final = "https://runbooks.example.com/metricgate"

Severity = Literal["critical", "warning", "info"]


@dataclass(frozen=True)
class RecordingRule:
    """`record` is `level:metric:operations`; `expr` must keep exactly the labels in `level`."""

    record: str
    expr: str

    def to_dict(self) -> dict[str, Any]:
        return {"record": self.record, "expr": self.expr}


@dataclass(frozen=True)
class AlertRule:
    """An alert with the labels and annotations every metricgate alert carries."""

    alert: str
    expr: str
    for_: str
    severity: Severity
    component: str
    summary: str
    description: str
    runbook: str
    """Page name under the runbook base URL."""

    def to_dict(self, runbook_base_url: str) -> dict[str, Any]:
        return {
            "alert": self.alert,
            "expr": self.expr,
            "for": self.for_,
            "labels": {"severity": self.severity, "component": self.component},
            "annotations": {
                "summary": self.summary,
                "description": self.description,
                "runbook_url": f"{runbook_base_url.rstrip('/')}/{self.runbook}",
            },
        }


RuleT = TypeVar("RuleT", RecordingRule, AlertRule)


@dataclass(frozen=True)
class RuleGroup(Generic[RuleT]):
    """A Prometheus rule group: rules evaluated together, in order, at the global interval."""

    name: str
    rules: tuple[RuleT, ...]


def _rate(selector: str, window: str, by: str) -> str:
    return f"sum by ({by}) (rate({selector}[{window}]))"


def _p95(bucket_selector: str, by: str) -> str:
    return f"histogram_quantile(0.95, {_rate(bucket_selector, '5m', by + ', le')})"


RECORDING_GROUPS: Final[tuple[RuleGroup[RecordingRule], ...]] = (
    RuleGroup(
        "metricgate-agent-recording",
        (
            RecordingRule(
                "agent_type_provider_status:agent_operations:rate5m",
                _rate("agent_operations_total", "5m", "agent_type, provider, status"),
            ),
            RecordingRule(
                "agent_type_provider:agent_operations:rate5m",
                _rate("agent_operations_total", "5m", "agent_type, provider"),
            ),
            RecordingRule(
                "agent_type_provider:agent_operations:rate1h",
                _rate("agent_operations_total", "1h", "agent_type, provider"),
            ),
            RecordingRule(
                "agent_type_provider:agent_execution_duration_seconds_bucket:rate5m",
                _rate("agent_execution_duration_seconds_bucket", "5m", "agent_type, provider, le"),
            ),
            RecordingRule(
                "agent_type_provider_token_type:agent_token_usage:rate5m",
                _rate("agent_token_usage_total", "5m", "agent_type, provider, token_type"),
            ),
            RecordingRule(
                "provider:agent_token_usage:rate1h",
                _rate('agent_token_usage_total{token_type="total"}', "1h", "provider"),
            ),
            RecordingRule(
                "agent_type_provider:agent_cost:rate1h",
                _rate("agent_cost_total", "1h", "agent_type, provider"),
            ),
        ),
    ),
    RuleGroup(
        "metricgate-system-recording",
        (
            RecordingRule(
                "route_status_code:http_requests:rate5m",
                _rate("http_requests_total", "5m", "route, status_code"),
            ),
            RecordingRule(
                "route:http_request_duration_seconds_bucket:rate5m",
                _rate("http_request_duration_seconds_bucket", "5m", "route, le"),
            ),
            RecordingRule(
                "operation:database_query_duration_seconds_bucket:rate5m",
                _rate("database_query_duration_seconds_bucket", "5m", "operation, le"),
            ),
        ),
    ),
    RuleGroup(
        "metricgate-business-recording",
        (
            RecordingRule(
                "feature_user_type:feature_usage:rate1h",
                _rate("feature_usage_total", "1h", "feature, user_type"),
            ),
            RecordingRule(
                "task_type_status:task_executions:rate5m",
                _rate("task_executions_total", "5m", "task_type, status"),
            ),
        ),
    ),
)
"""Every recording rule, grouped as written to `RECORDING_FILE`."""

_AGENT_ALERTS: Final = (
    AlertRule(
        alert="HighAgentErrorRate",
        expr=(
            _rate('agent_operations_total{status="error"}', "5m", "agent_type")
            + " / "
            + _rate("agent_operations_total", "5m", "agent_type")
            + " > 0.1"
        ),
        for_="2m",
        severity="warning",
        component="agent",
        summary="High error rate for {{ $labels.agent_type }} agents",
        description=(
            "{{ $value | humanizePercentage }} of {{ $labels.agent_type }} agent operations "
            "ended with status=error over the last 5 minutes (threshold 10%)."
        ),
        runbook="high-agent-error-rate",
    ),
    AlertRule(
        alert="AgentExecutionTimeout",
        expr=_p95("agent_execution_duration_seconds_bucket", "agent_type") + " > 60",
        for_="5m",
        severity="warning",
        component="agent",
        summary="Slow {{ $labels.agent_type }} agent executions",
        description=(
            "p95 execution time of {{ $labels.agent_type }} agents is "
            "{{ $value | humanizeDuration }} (threshold 60s)."
        ),
        runbook="agent-execution-timeout",
    ),
    AlertRule(
        alert="HighTokenUsage",
        # rate() is tokens per second; * 3600 states the threshold in tokens per hour.
        expr=(
            _rate('agent_token_usage_total{token_type="total"}', "1h", "agent_type")
            + " * 3600 > 100000"
        ),
        for_="10m",
        severity="warning",
        component="cost",
        summary="High token usage by {{ $labels.agent_type }} agents",
        description=(
            "{{ $labels.agent_type }} agents used {{ $value | humanize }} tokens per hour "
            "over the last hour (threshold 100k tokens/hour)."
        ),
        runbook="high-token-usage",
    ),
    AlertRule(
        alert="HighOperationalCost",
        # USD per second over the last hour, * 86400 = USD per day at that pace.
        expr="sum(rate(agent_cost_total[1h])) * 86400 > 100",
        for_="30m",
        severity="warning",
        component="cost",
        summary="Projected daily agent cost above $100",
        description=(
            'At the last hour\'s rate, agents will cost {{ printf "%.2f" $value }} USD per day '
            "(threshold 100 USD/day)."
        ),
        runbook="high-operational-cost",
    ),
)

_SYSTEM_ALERTS: Final = (
    AlertRule(
        alert="HighHTTPErrorRate",
        expr=(
            'sum(rate(http_requests_total{status_code=~"5.."}[5m]))'
            " / sum(rate(http_requests_total[5m])) > 0.05"
        ),
        for_="2m",
        severity="critical",
        component="http",
        summary="High HTTP 5xx ratio",
        description=(
            "{{ $value | humanizePercentage }} of HTTP requests over the last 5 minutes "
            "returned a 5xx status (threshold 5%)."
        ),
        runbook="high-http-error-rate",
    ),
    AlertRule(
        alert="DatabaseConnectionsHigh",
        expr="sum by (database) (database_connections_active) > 80",
        for_="5m",
        severity="warning",
        component="database",
        summary="Many connections to database {{ $labels.database }}",
        description=(
            "{{ $value }} connections to database {{ $labels.database }} are in use, "
            "summed over all pools and instances (threshold 80)."
        ),
        runbook="database-connections-high",
    ),
    AlertRule(
        alert="SlowDatabaseQueries",
        expr=_p95("database_query_duration_seconds_bucket", "operation") + " > 1",
        for_="5m",
        severity="warning",
        component="database",
        summary="Slow {{ $labels.operation }} database queries",
        description=(
            "p95 duration of {{ $labels.operation }} queries is "
            "{{ $value | humanizeDuration }} (threshold 1s)."
        ),
        runbook="slow-database-queries",
    ),
)

_BUSINESS_ALERTS: Final = (
    AlertRule(
        alert="LowUserEngagement",
        # No series at all yields no result, so this stays silent when nothing reports sessions.
        expr="sum(user_sessions_active) < 10",
        for_="15m",
        severity="info",
        component="business",
        summary="Few active user sessions",
        description="Only {{ $value }} user sessions are active (threshold 10).",
        runbook="low-user-engagement",
    ),
)


def alert_groups() -> tuple[RuleGroup[AlertRule], ...]:
    """Every alert, grouped as written to `ALERT_FILE`."""
    return (
        RuleGroup("metricgate-agent-alerts", _AGENT_ALERTS),
        RuleGroup("metricgate-system-alerts", _SYSTEM_ALERTS),
        RuleGroup("metricgate-business-alerts", _BUSINESS_ALERTS),
    )


def render_rule_file(
    groups: Sequence[RuleGroup[RecordingRule]] | Sequence[RuleGroup[AlertRule]],
    runbook_base_url: str = DEFAULT_RUNBOOK_BASE_URL,
) -> str:
    """The YAML text of a Prometheus rule file holding `groups`."""
    document = {
        "groups": [
            {
                "name": group.name,
                "rules": [
                    rule.to_dict(runbook_base_url)
                    if isinstance(rule, AlertRule)
                    else rule.to_dict()
                    for rule in group.rules
                ],
            }
            for group in groups
        ]
    }
    body = yaml.safe_dump(document, sort_keys=False, width=1000, allow_unicode=True)
    return "# Generated by `metricgate catalog rules`: edit metricgate/catalog/rules.py.\n" + body


def write_rules(out_dir: Path, runbook_base_url: str = DEFAULT_RUNBOOK_BASE_URL) -> list[Path]:
    """Write `RECORDING_FILE` and `ALERT_FILE` into `out_dir` (created if needed)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        RECORDING_FILE: render_rule_file(RECORDING_GROUPS, runbook_base_url),
        ALERT_FILE: render_rule_file(alert_groups(), runbook_base_url),
    }
    written = []
    for name, text in files.items():
        path = out_dir / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
