"""`metricgate validate` and `components` with the security sections (extensions, tenants)."""

from __future__ import annotations

from pathlib import Path

from tests.test_cli import metricgate

CONFIG = """
extensions:
  bearertokenauth/ci: {tokens_file: /etc/metricgate/tokens.yaml}
  basicauth/agents: {htpasswd: {file: /etc/metricgate/htpasswd}}
  oidc: {issuer_url: https://idp.example, audience: metricgate, tenant_claim: org}
receivers:
  otlp:
    protocols:
      http: {endpoint: 127.0.0.1:0}
exporters:
  debug: {}
tenants:
  team-a:
    allow_metrics: ["agent_.*", "http_.*"]
    rate_limit: {points_per_second: 50000, burst: 100000}
    max_series: 200000
service:
  extensions: [basicauth/agents, bearertokenauth/ci, oidc]
  pipelines:
    metrics: {receivers: [otlp], exporters: [debug]}
  telemetry:
    audit: {output: stdout}
"""


def test_validate_accepts_the_security_sections(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG)
    result = metricgate("validate", "--config", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_validate_names_extension_problems(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG.replace("audience: metricgate, ", ""))
    result = metricgate("validate", "--config", str(path))
    assert result.returncode == 1
    assert "  extensions.oidc: audience is required (or set ignore_audience: true)" in result.stderr


def test_components_lists_extension_types() -> None:
    lines = metricgate("components").stdout.splitlines()
    assert lines[lines.index("extensions:") + 1].split()[0] == "basicauth"
