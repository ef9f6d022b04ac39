"""The generated rule files pass `promtool check rules`, and `promtool test rules` proves each rule.

Every alert gets a case where it must fire (with its exact labels and rendered annotations) and
one where it must stay silent; every recording rule gets its expected value. The cases are in
`rule_cases.py`.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from metricgate.catalog.rules import (
    ALERT_FILE,
    DEFAULT_RUNBOOK_BASE_URL,
    RECORDING_FILE,
    RECORDING_GROUPS,
    alert_groups,
    write_rules,
)
from tests.catalog.rule_cases import ALERT_CASES, RECORDING_EXPECTED, RECORDING_INPUT, AlertCase
from tests.support.binaries import require_binary
from tests.support.prometheus import PrometheusServer


def _all_alerts() -> dict[str, Any]:
    return {rule.alert: rule for group in alert_groups() for rule in group.rules}


def _summary(template: str, labels: dict[str, str]) -> str:
    for key, value in labels.items():
        template = template.replace(f"{{{{ $labels.{key} }}}}", value)
    return template


def _alert_test_group(case: AlertCase) -> dict[str, Any]:
    rule = _all_alerts()[case.alert]
    expected = [
        {
            "exp_labels": {"severity": rule.severity, "component": rule.component, **labels},
            "exp_annotations": {
                "summary": _summary(rule.summary, labels),
                "description": description,
                "runbook_url": f"{DEFAULT_RUNBOOK_BASE_URL}/{rule.runbook}",
            },
        }
        for labels, description in case.fires
    ]
    return {
        "interval": "1m",
        "input_series": case.input_series,
        "alert_rule_test": [
            {"eval_time": case.eval_time, "alertname": case.alert, "exp_alerts": expected}
        ],
    }


def _recording_test_group() -> dict[str, Any]:
    # promtool compares values exactly and rate() is floating point (15 can come out as
    # 15.000000000000002), so compare in whole millionths; `* 1e6` also drops the metric name.
    return {
        "interval": "1m",
        "input_series": RECORDING_INPUT,
        "promql_expr_test": [
            {
                "expr": f"round({record} * 1000000)",
                "eval_time": "70m",
                "exp_samples": [
                    {"labels": f"{{{labels}}}", "value": round(value * 1_000_000)}
                    for labels, value in samples
                ],
            }
            for record, samples in RECORDING_EXPECTED.items()
        ],
    }


def promtool_test(tmp_path: Path, rule_files: list[Path], groups: list[dict[str, Any]]) -> str:
    """Run `promtool test rules` on `groups`; return its output, failing the test if it fails."""
    test_file = tmp_path / "catalog.test.yml"
    document = {
        "rule_files": [str(path) for path in rule_files],
        "evaluation_interval": "1m",
        "tests": groups,
    }
    test_file.write_text(yaml.safe_dump(document, sort_keys=False, width=1000))
    result = subprocess.run(
        [require_binary("promtool"), "test", "rules", str(test_file)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


@pytest.fixture
def rule_files(tmp_path: Path) -> list[Path]:
    return write_rules(tmp_path / "rules")


def test_promtool_check_rules(rule_files: list[Path]) -> None:
    assert [path.name for path in rule_files] == [RECORDING_FILE, ALERT_FILE]
    result = subprocess.run(
        [require_binary("promtool"), "check", "rules", *map(str, rule_files)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 12 rules found" in result.stdout
    assert "SUCCESS: 8 rules found" in result.stdout


def test_every_alert_has_a_firing_and_a_silent_case() -> None:
    for alert in _all_alerts():
        cases = [case for case in ALERT_CASES if case.alert == alert]
        assert any(case.fires for case in cases), f"{alert} never shown to fire"
        assert any(not case.fires for case in cases), f"{alert} never shown to stay silent"


def test_alerts_fire_exactly_when_they_should(tmp_path: Path, rule_files: list[Path]) -> None:
    output = promtool_test(tmp_path, rule_files, [_alert_test_group(c) for c in ALERT_CASES])
    assert "SUCCESS" in output


def test_every_recording_rule_evaluates_to_its_expected_value(
    tmp_path: Path, rule_files: list[Path]
) -> None:
    records = [rule.record for group in RECORDING_GROUPS for rule in group.rules]
    assert sorted(RECORDING_EXPECTED) == sorted(records)
    output = promtool_test(tmp_path, rule_files, [_recording_test_group()])
    assert "SUCCESS" in output


def test_a_ratio_with_mismatched_labels_would_be_caught(tmp_path: Path) -> None:
    """The harness itself: a ratio whose sides keep different labels never fires, and fails."""
    broken = tmp_path / "broken.rules.yml"
    rule = _all_alerts()["HighAgentErrorRate"]
    expr = rule.expr.replace(
        "sum by (agent_type) (rate(agent_operations_total[5m]))",
        "sum by (agent_type, job) (rate(agent_operations_total[5m]))",
    )
    assert expr != rule.expr
    document = {
        "groups": [
            {"name": "g", "rules": [{**rule.to_dict(DEFAULT_RUNBOOK_BASE_URL), "expr": expr}]}
        ]
    }
    broken.write_text(yaml.safe_dump(document, sort_keys=False))
    firing = next(c for c in ALERT_CASES if c.alert == "HighAgentErrorRate" and c.fires)
    with pytest.raises(AssertionError, match="FAILED"):
        promtool_test(tmp_path, [broken], [_alert_test_group(firing)])


def test_alerts_carry_the_design_names(tmp_path: Path) -> None:
    # Users' silences, routes and runbooks key on these names.
    (_, alerts) = write_rules(tmp_path)
    names = [r["alert"] for g in yaml.safe_load(alerts.read_text())["groups"] for r in g["rules"]]
    assert sorted(names) == sorted(
        [
            "HighAgentErrorRate",
            "AgentExecutionTimeout",
            "HighTokenUsage",
            "HighHTTPErrorRate",
            "DatabaseConnectionsHigh",
            "SlowDatabaseQueries",
            "LowUserEngagement",
            "HighOperationalCost",
        ]
    )


def test_alert_metadata_and_runbook_base(tmp_path: Path) -> None:
    (_, alerts) = write_rules(tmp_path, runbook_base_url="https://wiki.internal/runbooks/")
    for group in yaml.safe_load(alerts.read_text())["groups"]:
        for rule in group["rules"]:
            assert rule["labels"]["severity"] in {"critical", "warning", "info"}
            assert rule["labels"]["component"]
            assert set(rule["annotations"]) == {"summary", "description", "runbook_url"}
            assert rule["annotations"]["runbook_url"].startswith("https://wiki.internal/runbooks/")
            assert "//" not in rule["annotations"]["runbook_url"].removeprefix("https://")


def test_every_rule_expression_is_accepted_by_prometheus(prometheus: PrometheusServer) -> None:
    """`query()` raises on any API error, so each expression must parse and evaluate."""
    exprs = [rule.expr for group in RECORDING_GROUPS for rule in group.rules]
    exprs += [rule.expr for group in alert_groups() for rule in group.rules]
    assert len(exprs) == 20
    for expr in exprs:
        assert prometheus.query(expr) == []
