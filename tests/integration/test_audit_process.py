"""`metricgate run` with an audit log: start, config load and stop recorded; no secret logged."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.support.gateway import register_secrets, run_gateway

pytestmark = pytest.mark.integration

SECRET = "s3cr3t-t0ken-value-4242"

TEMPLATE = """
extensions:
  bearertokenauth/ci: {{tokens: ["${{file:TOKEN_FILE}}"]}}
receivers:
  otlp:
    protocols:
      http: {{endpoint: "127.0.0.1:{http}"}}
exporters:
  prometheus: {{endpoint: "127.0.0.1:{prometheus}"}}
service:
  extensions: [bearertokenauth/ci]
  pipelines:
    metrics: {{receivers: [otlp], exporters: [prometheus]}}
  telemetry:
    metrics: {{address: "127.0.0.1:{telemetry}"}}
    logs: {{level: debug, format: json}}
    audit: {{output: "AUDIT_FILE"}}
"""


def test_audit_log_of_a_run(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(SECRET + "\n")
    audit_path = tmp_path / "audit.log"
    template = TEMPLATE.replace("TOKEN_FILE", str(token_file)).replace(
        "AUDIT_FILE", str(audit_path)
    )
    register_secrets(SECRET)
    with run_gateway(tmp_path, template, logs=[audit_path]) as gateway:
        assert gateway.post_gauge("agent_up", [({}, 1.0, 1_700_000_000_000_000_000)]) == 200
        config_text = gateway.config_path.read_text()
        assert gateway.stop() == 0
        logs = gateway.logs()
    events = [json.loads(line) for line in audit_path.read_text().splitlines()]
    assert [e["event"] for e in events] == ["start", "config_load", "stop"]
    load = events[1]
    assert load["sha256"] == hashlib.sha256(config_text.encode()).hexdigest()
    assert "extensions.bearertokenauth/ci" in load["changed"]
    assert "receivers.otlp" in load["changed"]
    assert events[2]["reason"] == "signal"
    for text in (logs, audit_path.read_text()):
        assert SECRET not in text
