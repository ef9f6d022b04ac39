"""Optional dependencies: without an extra, the gateway still runs and the features that need it
say which extra to install. A missing distribution is simulated with `sys.modules[name] = None`,
which makes every import of that module fail as if it were not installed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from metricgate.extras import EXTRAS, MissingExtraError, require


def metricgate_without(modules: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    script = (
        "import sys\n"
        f"for name in {modules!r}:\n"
        "    sys.modules[name] = None\n"
        "from metricgate.cli import main\n"
        f"sys.exit(main({list(args)!r}))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )


CLOUDWATCH = """
receivers: {otlp: {protocols: {http: {endpoint: 127.0.0.1:0}}}}
exporters:
  cloudwatch: {namespace: Agents}
  cloudwatch/stdout: {namespace: Agents, mode: emf, output: stdout}
service:
  pipelines: {metrics: {receivers: [otlp], exporters: [cloudwatch, cloudwatch/stdout]}}
"""


def test_cloudwatch_without_botocore_is_a_config_error_naming_the_extra(tmp_path: Path) -> None:
    config = tmp_path / "cw.yaml"
    config.write_text(CLOUDWATCH)
    result = metricgate_without(["botocore"], "validate", "--config", str(config))
    assert result.returncode == 1, result.stdout
    problems = [line.strip() for line in result.stderr.splitlines()[1:]]
    # EMF to stdout makes no AWS call, so only the PutMetricData exporter needs botocore.
    assert problems == [
        "exporters.cloudwatch: the cloudwatch exporter needs the 'cloudwatch' extra (botocore is "
        "not installed): pip install 'metricgate[cloudwatch]'"
    ]
    # The rest of the gateway does not need it.
    assert metricgate_without(["botocore"], "validate").returncode == 0
    assert "cloudwatch" in metricgate_without(["botocore"], "components").stdout


def test_demo_and_recorder_without_the_sdk_name_the_catalog_extra() -> None:
    result = metricgate_without(["opentelemetry.sdk"], "demo", "--duration", "1s")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "metricgate: AgentMetrics (and metricgate demo) needs the 'catalog' extra "
        "(opentelemetry-sdk is not installed): pip install 'metricgate[catalog]'"
    )


def test_dashboards_without_grafana_sdk_name_the_catalog_extra(tmp_path: Path) -> None:
    result = metricgate_without(
        ["grafana_foundation_sdk"], "catalog", "dashboards", "--out", str(tmp_path / "d")
    )
    assert result.returncode == 1
    assert "needs the 'catalog' extra (grafana-foundation-sdk is not installed)" in result.stderr
    assert "pip install 'metricgate[catalog]'" in result.stderr
    # Rules need nothing optional.
    rules = metricgate_without(
        ["grafana_foundation_sdk", "opentelemetry.sdk"], "catalog", "rules", "--out", str(tmp_path)
    )
    assert rules.returncode == 0, rules.stderr


def test_require(monkeypatch: pytest.MonkeyPatch) -> None:
    assert require("json", "catalog", "x").dumps(1) == "1"
    monkeypatch.setitem(sys.modules, "botocore", None)
    monkeypatch.setitem(sys.modules, "botocore.session", None)
    with pytest.raises(MissingExtraError) as caught:
        require("botocore.session", "cloudwatch", "the thing")
    assert caught.value.extra == "cloudwatch" and caught.value.name == "botocore.session"
    assert str(caught.value) == (
        "the thing needs the 'cloudwatch' extra (botocore is not installed): "
        "pip install 'metricgate[cloudwatch]'"
    )


def test_every_extra_is_declared_in_pyproject() -> None:
    text = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    for extra, distributions in EXTRAS.items():
        assert f"\n{extra} = [" in text
        for distribution in distributions:
            assert f'"{distribution}>=' in text
