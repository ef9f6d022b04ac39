"""Synthetic input for `promtool test rules`: alert cases and recording-rule expectations.

Series carry the labels metricgate's exporter adds (job, instance, otel_scope_name) and are spread
over two instances, so a rule that does not aggregate them away fails its test.
"""

from __future__ import annotations

from dataclasses import dataclass, field

EXPORTER_LABELS = {"job": "agents", "otel_scope_name": "metricgate.catalog"}


def series(
    name: str, labels: dict[str, str], values: str, instance: str = "pod-1"
) -> dict[str, str]:
    all_labels = {**labels, **EXPORTER_LABELS, "instance": instance}
    inner = ", ".join(f'{key}="{value}"' for key, value in all_labels.items())
    return {"series": f"{name}{{{inner}}}", "values": values}


def histogram(
    name: str, labels: dict[str, str], bounds: tuple[float, ...], upper: float, per_minute: int
) -> list[dict[str, str]]:
    """Bucket series for `per_minute` observations a minute, all in the bucket ending at `upper`,
    half on each of two instances."""
    out = []
    for instance in ("pod-1", "pod-2"):
        for bound in (*bounds, float("inf")):
            le = "+Inf" if bound == float("inf") else f"{bound:g}"
            values = f"0+{per_minute // 2}x80" if bound >= upper else "0x80"
            out.append(series(f"{name}_bucket", {**labels, "le": le}, values, instance))
    return out


EXEC_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120)
DB_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2)
HTTP_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10)


@dataclass
class AlertCase:
    alert: str
    input_series: list[dict[str, str]]
    eval_time: str
    fires: list[tuple[dict[str, str], str]] = field(default_factory=list)
    """(labels beyond alertname/severity/component, rendered description) of each firing alert."""


def _ops(agent_type: str, status: str, values: str, instance: str = "pod-1") -> dict[str, str]:
    labels = {"agent_id": "a1", "agent_type": agent_type, "operation": "llm_call"}
    labels |= {"provider": "openai", "status": status}
    return series("agent_operations_total", labels, values, instance)


def _tokens(
    agent_type: str, token_type: str, values: str, instance: str = "pod-1"
) -> dict[str, str]:
    labels = {"agent_id": "a1", "agent_type": agent_type, "provider": "openai"}
    return series("agent_token_usage_total", {**labels, "token_type": token_type}, values, instance)


def _http(status: str, per_minute: int, instance: str = "pod-1") -> dict[str, str]:
    labels = {"method": "GET", "route": "/agents", "status_code": status}
    return series("http_requests_total", labels, f"0+{per_minute}x20", instance)


def _cost(provider: str, per_minute: str) -> dict[str, str]:
    labels = {"agent_id": "a1", "agent_type": "planner", "provider": provider}
    return series("agent_cost_total", labels, f"0+{per_minute}x120")


def pair(
    alert: str,
    firing: list[dict[str, str]],
    silent: list[dict[str, str]],
    eval_time: str,
    fires: list[tuple[dict[str, str], str]],
) -> list[AlertCase]:
    """A case where `firing` makes the alert fire, one where `silent` alone does not, and one with
    both, proving the alert picks out exactly the firing group."""
    return [
        AlertCase(alert, firing, eval_time, fires),
        AlertCase(alert, silent, eval_time),
        AlertCase(alert, firing + silent, eval_time, fires),
    ]


ALERT_CASES = [
    # planner: 0.5 errors/s (over two instances) of 2 ops/s = 25%; coder: 5%.
    *pair(
        "HighAgentErrorRate",
        [
            _ops("planner", "success", "0+90x20"),
            _ops("planner", "error", "0+15x20", "pod-1"),
            _ops("planner", "error", "0+15x20", "pod-2"),
        ],
        [_ops("coder", "success", "0+57x20"), _ops("coder", "error", "0+3x20")],
        "10m",
        [
            (
                {"agent_type": "planner"},
                "25% of planner agent operations ended with status=error over the last 5 minutes "
                "(threshold 10%).",
            )
        ],
    ),
    # planner: every execution in (60, 120] -> p95 = 117 s; coder: in (10, 30] -> 29 s.
    *pair(
        "AgentExecutionTimeout",
        histogram(
            "agent_execution_duration_seconds",
            {"agent_id": "a1", "agent_type": "planner", "task_type": "t", "provider": "p"},
            EXEC_BUCKETS,
            120,
            6,
        ),
        histogram(
            "agent_execution_duration_seconds",
            {"agent_id": "a2", "agent_type": "coder", "task_type": "t", "provider": "p"},
            EXEC_BUCKETS,
            30,
            6,
        ),
        "15m",
        [
            (
                {"agent_type": "planner"},
                "p95 execution time of planner agents is 1m 57s (threshold 60s).",
            )
        ],
    ),
    # planner: total 30 tokens/s = 108k/h. coder: total 54k/h, though input + output + total
    # would be 108k/h: the alert must count token_type="total" only.
    *pair(
        "HighTokenUsage",
        [
            _tokens("planner", "total", "0+900x80", "pod-1"),
            _tokens("planner", "total", "0+900x80", "pod-2"),
        ],
        [
            _tokens("coder", "total", "0+900x80"),
            _tokens("coder", "input", "0+600x80"),
            _tokens("coder", "output", "0+300x80"),
        ],
        "70m",
        [
            (
                {"agent_type": "planner"},
                "planner agents used 108k tokens per hour over the last hour "
                "(threshold 100k tokens/hour).",
            )
        ],
    ),
    # 0.1 USD a minute over two providers = 144 USD/day; 0.03 USD a minute = 43.2 USD/day.
    AlertCase(
        "HighOperationalCost",
        [_cost("openai", "0.06"), _cost("anthropic", "0.04")],
        "100m",
        [
            (
                {},
                "At the last hour's rate, agents will cost 144.00 USD per day "
                "(threshold 100 USD/day).",
            )
        ],
    ),
    AlertCase("HighOperationalCost", [_cost("openai", "0.03")], "100m"),
    # 6 of 60 requests a minute are 5xx = 10%.
    AlertCase(
        "HighHTTPErrorRate",
        [_http("200", 54), _http("500", 3, "pod-1"), _http("503", 3, "pod-2")],
        "10m",
        [
            (
                {},
                "10% of HTTP requests over the last 5 minutes returned a 5xx status "
                "(threshold 5%).",
            )
        ],
    ),
    # 1 of 60 is 5xx; the 4xx responses must not count (they would make it 18%).
    AlertCase("HighHTTPErrorRate", [_http("200", 49), _http("404", 10), _http("500", 1)], "10m"),
    # main: 45 + 40 over two pools and instances = 85; analytics: 50 + 20 = 70.
    *pair(
        "DatabaseConnectionsHigh",
        [
            series("database_connections_active", {"database": "main", "pool": "a"}, "45x20"),
            series(
                "database_connections_active", {"database": "main", "pool": "b"}, "40x20", "pod-2"
            ),
        ],
        [
            series("database_connections_active", {"database": "analytics", "pool": "a"}, "50x20"),
            series("database_connections_active", {"database": "analytics", "pool": "b"}, "20x20"),
        ],
        "10m",
        [
            (
                {"database": "main"},
                "85 connections to database main are in use, summed over all pools and instances "
                "(threshold 80).",
            )
        ],
    ),
    # select: every query in (1, 2] -> p95 = 1.95 s; insert: in (0.05, 0.1].
    *pair(
        "SlowDatabaseQueries",
        histogram(
            "database_query_duration_seconds",
            {"operation": "select", "table": "t"},
            DB_BUCKETS,
            2,
            60,
        ),
        histogram(
            "database_query_duration_seconds",
            {"operation": "insert", "table": "t"},
            DB_BUCKETS,
            0.1,
            60,
        ),
        "15m",
        [({"operation": "select"}, "p95 duration of select queries is 1.95s (threshold 1s).")],
    ),
    # 3 + 4 sessions over two instances = 7; 6 + 6 = 12.
    AlertCase(
        "LowUserEngagement",
        [
            series("user_sessions_active", {}, "3x30"),
            series("user_sessions_active", {}, "4x30", "pod-2"),
        ],
        "20m",
        [({}, "Only 7 user sessions are active (threshold 10).")],
    ),
    AlertCase(
        "LowUserEngagement",
        [
            series("user_sessions_active", {}, "6x30"),
            series("user_sessions_active", {}, "6x30", "pod-2"),
        ],
        "20m",
    ),
]


def _agent(agent_type: str, provider: str) -> dict[str, str]:
    return {"agent_id": f"{agent_type}-1", "agent_type": agent_type, "provider": provider}


def _op(agent_type: str, provider: str, status: str) -> dict[str, str]:
    return {**_agent(agent_type, provider), "operation": "llm_call", "status": status}


RECORDING_INPUT = [
    series("agent_operations_total", _op("planner", "openai", "success"), "0+90x80"),
    series("agent_operations_total", _op("planner", "openai", "error"), "0+15x80"),
    series("agent_operations_total", _op("planner", "openai", "error"), "0+15x80", "pod-2"),
    series("agent_operations_total", _op("coder", "anthropic", "success"), "0+120x80"),
    *histogram(
        "agent_execution_duration_seconds",
        {**_agent("planner", "openai"), "task_type": "plan"},
        EXEC_BUCKETS,
        2,
        6,
    ),
    series(
        "agent_token_usage_total",
        {**_agent("planner", "openai"), "token_type": "input"},
        "0+600x80",
    ),
    series(
        "agent_token_usage_total",
        {**_agent("planner", "openai"), "token_type": "output"},
        "0+300x80",
    ),
    series(
        "agent_token_usage_total",
        {**_agent("planner", "openai"), "token_type": "total"},
        "0+450x80",
    ),
    series(
        "agent_token_usage_total",
        {**_agent("planner", "openai"), "token_type": "total"},
        "0+450x80",
        "pod-2",
    ),
    series("agent_cost_total", _agent("planner", "openai"), "0+3x80"),
    series(
        "http_requests_total",
        {"method": "GET", "route": "/agents", "status_code": "200"},
        "0+54x80",
    ),
    series(
        "http_requests_total", {"method": "GET", "route": "/agents", "status_code": "500"}, "0+6x80"
    ),
    *histogram(
        "http_request_duration_seconds",
        {"method": "GET", "route": "/agents"},
        HTTP_BUCKETS,
        0.1,
        60,
    ),
    *histogram(
        "database_query_duration_seconds",
        {"operation": "select", "table": "t"},
        DB_BUCKETS,
        0.01,
        60,
    ),
    series("feature_usage_total", {"feature": "search", "user_type": "pro"}, "0+60x80"),
    series(
        "task_executions_total",
        {"task_type": "plan", "status": "completed", "priority": "high"},
        "0+30x80",
    ),
]


def _buckets(
    labels: str, bounds: tuple[float, ...], upper: float, rate: float
) -> list[tuple[str, float]]:
    return [
        (f'{labels}, le="{"+Inf" if b == float("inf") else f"{b:g}"}"', rate if b >= upper else 0.0)
        for b in (*bounds, float("inf"))
    ]


# record -> [(labels inside the braces, value)] at 70m.
RECORDING_EXPECTED: dict[str, list[tuple[str, float]]] = {
    "agent_type_provider_status:agent_operations:rate5m": [
        ('agent_type="planner", provider="openai", status="success"', 1.5),
        ('agent_type="planner", provider="openai", status="error"', 0.5),
        ('agent_type="coder", provider="anthropic", status="success"', 2),
    ],
    "agent_type_provider:agent_operations:rate5m": [
        ('agent_type="planner", provider="openai"', 2),
        ('agent_type="coder", provider="anthropic"', 2),
    ],
    "agent_type_provider:agent_operations:rate1h": [
        ('agent_type="planner", provider="openai"', 2),
        ('agent_type="coder", provider="anthropic"', 2),
    ],
    "agent_type_provider:agent_execution_duration_seconds_bucket:rate5m": _buckets(
        'agent_type="planner", provider="openai"', EXEC_BUCKETS, 2, 0.1
    ),
    "agent_type_provider_token_type:agent_token_usage:rate5m": [
        ('agent_type="planner", provider="openai", token_type="input"', 10),
        ('agent_type="planner", provider="openai", token_type="output"', 5),
        ('agent_type="planner", provider="openai", token_type="total"', 15),
    ],
    "provider:agent_token_usage:rate1h": [('provider="openai"', 15)],
    "agent_type_provider:agent_cost:rate1h": [('agent_type="planner", provider="openai"', 0.05)],
    "route_status_code:http_requests:rate5m": [
        ('route="/agents", status_code="200"', 0.9),
        ('route="/agents", status_code="500"', 0.1),
    ],
    "route:http_request_duration_seconds_bucket:rate5m": _buckets(
        'route="/agents"', HTTP_BUCKETS, 0.1, 1
    ),
    "operation:database_query_duration_seconds_bucket:rate5m": _buckets(
        'operation="select"', DB_BUCKETS, 0.01, 1
    ),
    "feature_user_type:feature_usage:rate1h": [('feature="search", user_type="pro"', 1)],
    "task_type_status:task_executions:rate5m": [('status="completed", task_type="plan"', 0.5)],
}
