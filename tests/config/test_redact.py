"""Redaction: secrets in config trees, free text, log lines and config errors never come out."""

from __future__ import annotations

import base64
import io
import json
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metricgate.config.redact import REDACTED, is_secret_key, redact, redact_text
from metricgate.errors import ConfigError
from metricgate.telemetry.logs import ConsoleFormatter, JsonFormatter

SECRET = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
    min_size=10,
    max_size=40,
).map(lambda text: "Q9" + text)  # "Q9" appears in none of the texts around it


@given(secret=SECRET)
def test_secrets_in_free_text_are_masked(secret: str) -> None:
    basic = base64.b64encode(f"alice:{secret}".encode()).decode()
    texts = [
        f"Authorization: Bearer {secret}",
        f"headers={{'authorization': 'Basic {basic}'}}",
        f"request failed: Bearer {secret}",
        f"Basic {basic}",
        f"dial https://alice:{secret}@mimir.example/api/v1/push",
        f"password={secret}&user=alice",
        f"GET /metrics?access_token={secret}",
        f"client_secret: {secret}",
        f"-----BEGIN PRIVATE KEY-----\n{secret}\n-----END PRIVATE KEY-----",
        f"token eyJhbGciOiJSUzI1NiJ9.eyJ{secret}.{secret}",
    ]
    for text in texts:
        assert secret not in redact_text(text), text


def test_prose_is_left_alone() -> None:
    for text in ("token expired", "basic authentication failed", "unknown user or wrong password"):
        assert redact_text(text) == text


def test_config_trees() -> None:
    tree = {
        "extensions": {
            "bearertokenauth/ci": {
                "tokens": ["t1", {"token": "t2", "principal": "alice"}],
                "tokens_file": "/etc/tokens.yaml",
            },
            "basicauth": {"htpasswd": {"inline": "alice:$2y$10$abc", "file": "/etc/htpasswd"}},
        },
        "exporters": {
            "datadog": {"api": {"key": "dd-secret"}},
            "otlp": {"headers": {"Authorization": "Bearer zzz", "X-Scope-OrgID": "team-a"}},
            "prometheus_remote_write": {"endpoint": "https://u:pw@host/push", "timeout": 5},
        },
    }
    out = redact(tree)
    assert out["extensions"]["bearertokenauth/ci"]["tokens"] == [
        REDACTED,
        {"token": REDACTED, "principal": "alice"},
    ]
    assert out["extensions"]["bearertokenauth/ci"]["tokens_file"] == "/etc/tokens.yaml"
    assert out["extensions"]["basicauth"]["htpasswd"] == {
        "inline": REDACTED,
        "file": "/etc/htpasswd",
    }
    assert out["exporters"]["datadog"]["api"]["key"] == REDACTED
    assert out["exporters"]["otlp"]["headers"] == {
        "Authorization": REDACTED,
        "X-Scope-OrgID": "team-a",
    }
    assert out["exporters"]["prometheus_remote_write"] == {
        "endpoint": f"https://u:{REDACTED}@host/push",
        "timeout": 5,
    }
    assert not is_secret_key("max_tokens_file") and is_secret_key("client_secret")


@pytest.mark.parametrize("formatter", [JsonFormatter(), ConsoleFormatter()])
def test_log_lines_are_redacted(formatter: logging.Formatter) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger = logging.getLogger("test.redaction")
    logger.addHandler(handler)
    try:
        logger.error(
            "backend refused Authorization: Bearer sup3rs3cr3tvalue",
            extra={"url": "https://a:hunter22@x"},
        )
    finally:
        logger.removeHandler(handler)
    line = stream.getvalue()
    assert "sup3rs3cr3tvalue" not in line and "hunter22" not in line
    if isinstance(formatter, JsonFormatter):
        json.loads(line)


def test_config_errors_do_not_echo_secrets() -> None:
    from metricgate.config import load_config_text
    from metricgate.extensions import default_extension_registry
    from tests.support.capture import registry_with_capture

    text = """
extensions:
  basicauth: {htpasswd: {inline: ["alice:$2y$10$verysecrethashvalue"]}}
exporters: {capture: {}}
service:
  extensions: [basicauth]
  pipelines: {metrics: {receivers: [], exporters: [capture]}}
"""
    with pytest.raises(ConfigError) as info:
        load_config_text(text, registry_with_capture(), {}, extensions=default_extension_registry())
    problem = next(
        p for p in info.value.problems if p.startswith("extensions.basicauth.htpasswd.inline")
    )
    assert "verysecrethashvalue" not in problem and REDACTED in problem
