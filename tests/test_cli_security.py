"""`metricgate validate` and `components` with the security sections (extensions, tenants)."""

from __future__ import annotations

from pathlib import Path

from tests.support.cli import metricgate

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


def test_validate_warns_about_credentials_in_plain_text(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        CONFIG.replace(
            "http: {endpoint: 127.0.0.1:0}",
            "http: {endpoint: 127.0.0.1:0, auth: {authenticator: bearertokenauth/ci}}",
        )
    )
    result = metricgate("validate", "--config", str(path))
    assert result.returncode == 0, result.stderr
    assert (
        "warning: receivers.otlp.protocols.http.auth: credentials reach this listener in plain "
        "text; set receivers.otlp.protocols.http.tls" in result.stderr
    )


RUN = """
extensions:
  bearertokenauth: {{tokens_file: "{tokens}"}}
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:0
        tls: {{cert_file: "{cert}", key_file: "{cert}"}}
        auth: {{authenticator: bearertokenauth}}
exporters:
  debug: {{}}
service:
  extensions: [bearertokenauth]
  pipelines:
    metrics: {{receivers: [otlp], exporters: [debug]}}
  telemetry:
    metrics: {{address: ""}}
"""


def test_run_stops_on_files_that_do_not_load(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.yaml"
    path = tmp_path / "config.yaml"
    path.write_text(RUN.format(tokens=tokens, cert=tmp_path / "server.pem"))
    missing_tokens = metricgate("run", "--config", str(path))
    assert missing_tokens.returncode == 1
    assert "extensions.bearertokenauth" in missing_tokens.stderr
    assert str(tokens) in missing_tokens.stderr

    tokens.write_text("- {token: t0k3n-value, principal: ci}\n")
    missing_cert = metricgate("run", "--config", str(path))
    assert missing_cert.returncode == 1
    assert (
        "could not start: receivers.otlp.protocols.http.tls: cannot load the certificate"
        in missing_cert.stderr
    )
    assert "t0k3n-value" not in missing_cert.stderr + missing_cert.stdout
