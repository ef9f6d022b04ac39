"""Prometheus' http_client_config keys: validation and the Authorization header."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from pydantic import ValidationError

from metricgate.config.http_client import HttpClientConfig


def test_basic_auth_header_reads_the_password_file_each_time(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("one\n")
    config = HttpClientConfig.model_validate(
        {"basic_auth": {"username": "u", "password_file": str(secret)}}
    )
    assert config.authorization_header() == "Basic " + base64.b64encode(b"u:one").decode()
    secret.write_text("two")
    assert config.authorization_header() == "Basic " + base64.b64encode(b"u:two").decode()


def test_authorization_and_bearer_token(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("abc")
    assert (
        HttpClientConfig.model_validate(
            {"authorization": {"credentials_file": str(token)}}
        ).authorization_header()
        == "Bearer abc"
    )
    assert (
        HttpClientConfig.model_validate({"bearer_token_file": str(token)}).authorization_header()
        == "Bearer abc"
    )
    assert HttpClientConfig().authorization_header() is None


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"proxy_url": "http://proxy:3128"}, "proxy_url is not supported"),
        ({"oauth2": {"client_id": "x"}}, "oauth2 is not supported"),
        (
            {"basic_auth": {"username": "u"}, "bearer_token": "t"},
            "at most one of basic_auth, authorization",
        ),
        ({"authorization": {"type": "Basic"}}, "use basic_auth"),
        ({"tls_config": {"cert_file": "c.pem"}}, "must be given together"),
        ({"tls_config": {"min_version": "TLS9"}}, "TLS12"),
        ({"tls_confg": {}}, "extra"),
    ],
)
def test_refused(config: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        HttpClientConfig.model_validate(config)
