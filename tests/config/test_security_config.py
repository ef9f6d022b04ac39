"""Config loading of the security keys: `${file:...}`, `extensions:`, `service.extensions`,
listener `auth:` references and `tenants:`."""

from __future__ import annotations

from pathlib import Path

import pytest

from metricgate.components import BUILTIN_FACTORIES
from metricgate.config import ComponentConfig, load_config_text
from metricgate.config.auth import AuthSettings
from metricgate.config.tenants import TenantsConfig
from metricgate.config.tls_server import ServerTls
from metricgate.errors import ConfigError
from metricgate.extensions import default_extension_registry
from metricgate.extensions.bearer import BearerTokenAuthConfig
from metricgate.pipeline import Consumer, Receiver, Registry
from metricgate.pipeline.registry import receiver_factory
from tests.support.capture import CAPTURE_FACTORY


class GuardedHttp(ComponentConfig):
    endpoint: str = "127.0.0.1:0"
    tls: ServerTls | None = None
    auth: AuthSettings | None = None


class GuardedConfig(ComponentConfig):
    protocols: dict[str, GuardedHttp] = {}


class GuardedReceiver(Receiver):
    def __init__(self, component_id: str, config: GuardedConfig, next_consumer: Consumer) -> None:
        super().__init__(component_id, next_consumer)


REGISTRY = Registry([*BUILTIN_FACTORIES, CAPTURE_FACTORY])
REGISTRY.register(receiver_factory("guarded", GuardedConfig, GuardedReceiver))
EXTENSIONS = default_extension_registry()

BASE = """
receivers:
  guarded:
    protocols:
      http: {auth: {authenticator: bearertokenauth/ci}}
exporters:
  capture: {}
service:
  pipelines:
    metrics: {receivers: [guarded], exporters: [capture]}
"""


def load(text: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return load_config_text(text, REGISTRY, env or {}, extensions=EXTENSIONS)


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(text)
    return info.value.problems


def test_extensions_are_validated_and_enabled(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("s3cret\n")
    text = (
        BASE
        + f"""  extensions: [bearertokenauth/ci]
extensions:
  bearertokenauth/ci: {{tokens: ["${{file:{secret}}}"]}}
  oidc/unused: {{issuer_url: "https://idp", audience: mg}}
"""
    )
    config = load(text)
    spec = config.extensions["bearertokenauth/ci"]
    assert isinstance(spec.config, BearerTokenAuthConfig)
    assert spec.config.tokens == ["s3cret"]
    assert config.warnings == [
        "extensions.oidc/unused: defined but not listed in service.extensions; ignored",
        "receivers.guarded.protocols.http.auth: credentials reach this listener in plain text; "
        "set receivers.guarded.protocols.http.tls",
    ]
    auth = config.receivers["guarded"].config.protocols["http"].auth  # type: ignore[attr-defined]
    assert auth == AuthSettings(authenticator="bearertokenauth/ci")


def test_reference_errors_name_the_key_path() -> None:
    assert problems(BASE) == [
        "receivers.guarded.protocols.http.auth.authenticator: references extension "
        "'bearertokenauth/ci', which is not defined under extensions"
    ]
    not_enabled = BASE + "extensions:\n  bearertokenauth/ci: {token: t}\n"
    assert problems(not_enabled) == [
        "receivers.guarded.protocols.http.auth.authenticator: extension 'bearertokenauth/ci' is "
        "not enabled; add it to service.extensions"
    ]
    undefined = BASE + "  extensions: [oidc]\nextensions:\n  bearertokenauth/ci: {token: t}\n"
    assert (
        "service.extensions[0]: references extension 'oidc', which is not defined under "
        "extensions" in problems(undefined)
    )


def test_extension_bodies_get_key_path_errors() -> None:
    text = (
        BASE
        + """  extensions: [bearertokenauth/ci, nope]
extensions:
  bearertokenauth/ci: {tokens: [t], shceme: Bearer}
  nope: {}
"""
    )
    found = problems(text)
    assert found[0].startswith(
        "extensions.bearertokenauth/ci.shceme: unknown key (expected one of:"
    )
    assert "scheme" in found[0]
    assert found[1].startswith("extensions.nope: unknown extension type 'nope' (known: basicauth,")


def test_file_provider(tmp_path: Path) -> None:
    port = tmp_path / "port"
    port.write_text("4318\n")
    text = f"""
receivers:
  guarded:
    protocols:
      http: {{endpoint: "127.0.0.1:${{file:{port}}}"}}
exporters:
  capture: {{}}
service:
  pipelines:
    metrics: {{receivers: [guarded], exporters: [capture]}}
"""
    config = load(text)
    assert config.receivers["guarded"].config.protocols["http"].endpoint == "127.0.0.1:4318"  # type: ignore[attr-defined]
    missing = text.replace(str(port), str(tmp_path / "absent"))
    assert problems(missing) == [
        f"receivers.guarded.protocols.http.endpoint: cannot read ${{file:{tmp_path / 'absent'}}}: "
        "No such file or directory"
    ]


def test_tenants_section() -> None:
    text = (
        BASE.replace("{auth: {authenticator: bearertokenauth/ci}}", "{}")
        + """
tenants:
  team-a:
    principals: [alice]
    allow_metrics: ["agent_.*", "http_.*"]
    rate_limit: {points_per_second: 50000, burst: 100000}
    max_series: 200000
    max_request_size: 4MiB
  "*": {rate_limit: {points_per_second: 100}}
"""
    )
    config = load(text)
    assert isinstance(config.tenants, TenantsConfig)
    team = config.tenants.root["team-a"]
    assert (team.max_request_size, team.rate_limit.capacity) == (4 * 1024 * 1024, 100000)  # type: ignore[union-attr]
    bad_regex = text.replace('"agent_.*"', '"agent_(.*"')
    assert problems(bad_regex) == [
        "tenants.team-a.allow_metrics: item 0: invalid regex 'agent_(.*': missing closing )"
    ]
    (bad_id,) = problems(text.replace("team-a:", "team/a:"))
    assert bad_id.startswith("tenants: expected a tenant id of at most 150 characters")
    twice = text.replace('"*": {', "team-b: {principals: [alice], ")
    assert any(
        "principal 'alice' is listed under both 'team-a' and 'team-b'" in p for p in problems(twice)
    )


def test_without_a_catalog_extensions_are_kept_unchecked() -> None:
    text = (
        BASE
        + "  extensions: [bearertokenauth/ci]\nextensions:\n  bearertokenauth/ci: {whatever: 1}\n"
    )
    config = load_config_text(text, REGISTRY, {})
    assert config.extensions["bearertokenauth/ci"].config == {"whatever": 1}


def test_mtls_needs_a_mutual_tls_listener() -> None:
    text = (
        BASE.replace("bearertokenauth/ci", "mtls")
        + "  extensions: [mtls]\nextensions:\n  mtls: {}\n"
    )
    assert problems(text) == [
        "receivers.guarded.protocols.http.auth.authenticator: 'mtls' identifies clients by their "
        "certificate; set receivers.guarded.protocols.http.tls.client_ca_file (mutual TLS)"
    ]
    mutual = text.replace(
        "http: {auth:",
        "http: {tls: {cert_file: s.pem, key_file: s.key, client_ca_file: ca.pem}, auth:",
    )
    assert load(mutual).extensions["mtls"].type == "mtls"
