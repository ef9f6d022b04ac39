"""`kubernetes_sd_configs` keys, Prometheus' names and rules, and how to reach the API server.

With `api_server` empty metricgate runs in-cluster, as Prometheus does: the API server is
`https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`, trusted with the service account's
`ca.crt` and called with its `token` (re-read on every request, so a rotated token works), and
`namespaces.own_namespace` reads the account's `namespace` file. With `api_server` set, the HTTP
client keys say how to authenticate. Roles `node`, `service` and `ingress`, `kubeconfig_file` and
`attach_metadata.node` are Prometheus keys metricgate refuses by name rather than ignores.

Invariant: a config that validates names a supported role and consistent connection settings;
`connection()` is the only place that reads the environment and the service-account files.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Self
from urllib.parse import urlsplit

from pydantic import ValidationInfo, field_validator, model_validator

from metricgate.config.http_client import HttpClientConfig, TlsConfig
from metricgate.config.types import ComponentConfig

ROLES = ("pod", "endpoints", "endpointslice")
"""The roles metricgate discovers."""
PROMETHEUS_ROLES = ("pod", "service", "endpoints", "endpointslice", "node", "ingress")

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"

_SELECTOR_ROLES = {
    "pod": ("pod",),
    "endpoints": ("pod", "service", "endpoints"),
    "endpointslice": ("pod", "service", "endpointslice"),
}
"""Which objects' selectors each role accepts (Prometheus' table)."""


class NamespaceDiscovery(ComponentConfig):
    """`namespaces`: the namespaces to watch (all when empty), and/or the pod's own."""

    own_namespace: bool = False
    names: list[str] = []


class SelectorConfig(ComponentConfig):
    """One `selectors` entry: label and field selectors for one kind of object."""

    role: str
    label: str = ""
    field: str = ""


class AttachMetadataConfig(ComponentConfig):
    """`attach_metadata`: extra metadata for the targets (node labels are not supported)."""

    node: bool = False

    @field_validator("node")
    @classmethod
    def _node(cls, node: bool) -> bool:
        if node:
            raise ValueError("node metadata is not supported by metricgate; leave it false")
        return node


class KubernetesSDConfig(HttpClientConfig):
    """One `kubernetes_sd_configs` entry: which objects to discover and how to reach the API."""

    api_server: str = ""
    role: str
    kubeconfig_file: str = ""
    namespaces: NamespaceDiscovery = NamespaceDiscovery()
    selectors: list[SelectorConfig] = []
    attach_metadata: AttachMetadataConfig = AttachMetadataConfig()

    @field_validator("api_server")
    @classmethod
    def _api_server(cls, url: str) -> str:
        parts = urlsplit(url)
        if url and (parts.scheme not in ("http", "https") or not parts.hostname):
            raise ValueError(f"expected an http:// or https:// URL, got {url!r}")
        return url.rstrip("/")

    @field_validator("role")
    @classmethod
    def _role(cls, role: str) -> str:
        if role not in ROLES:
            problem = "is not supported by metricgate" if role in PROMETHEUS_ROLES else "is unknown"
            raise ValueError(f"role {role!r} {problem} (expected one of: {', '.join(ROLES)})")
        return role

    @field_validator("kubeconfig_file")
    @classmethod
    def _kubeconfig(cls, path: str) -> str:
        if path:
            raise ValueError(
                "kubeconfig_file is not supported by metricgate; set api_server and the HTTP "
                "client keys (authorization, tls_config), or run in the cluster"
            )
        return path

    @field_validator("selectors")
    @classmethod
    def _selectors(
        cls, selectors: list[SelectorConfig], info: ValidationInfo
    ) -> list[SelectorConfig]:
        role = info.data.get("role")
        allowed = _SELECTOR_ROLES.get(role or "", ())
        seen: set[str] = set()
        for selector in selectors:
            if selector.role in seen:
                raise ValueError(f"duplicated selector role: {selector.role}")
            seen.add(selector.role)
            if allowed and selector.role not in allowed:
                raise ValueError(f"{role} role supports only {', '.join(allowed)} selectors")
        return selectors

    @model_validator(mode="after")
    def _connection(self) -> Self:
        if self.api_server and self.namespaces.own_namespace:
            raise ValueError("cannot use api_server and namespaces.own_namespace together")
        if not self.api_server and self.http_client() != HttpClientConfig():
            raise ValueError(
                "to use custom HTTP client settings, give the api_server URL explicitly"
            )
        return self

    def http_client(self) -> HttpClientConfig:
        """The HTTP client keys of this entry alone."""
        return HttpClientConfig(
            **{key: getattr(self, key) for key in HttpClientConfig.model_fields}
        )

    def selector(self, kind: str) -> tuple[str, str]:
        """(label selector, field selector) for objects of `kind` (`pod`, `service`, ...)."""
        for selector in self.selectors:
            if selector.role == kind:
                return selector.label, selector.field
        return "", ""


@dataclass(frozen=True)
class Connection:
    """Where the API server is, how to call it, and which namespaces to watch."""

    base_url: str
    http: HttpClientConfig
    namespaces: tuple[str, ...]
    """Namespace names, or `("",)` for all namespaces."""


def connection(
    config: KubernetesSDConfig,
    service_account_dir: str = SERVICE_ACCOUNT_DIR,
    environ: Mapping[str, str] = os.environ,
) -> Connection:
    """The API server of `config`, or the in-cluster one when `api_server` is empty.

    Raises `ValueError` naming what is missing when in-cluster settings cannot be found.
    """
    names = list(config.namespaces.names)
    if config.api_server:
        return Connection(config.api_server, config.http_client(), tuple(names) or ("",))
    host = environ.get("KUBERNETES_SERVICE_HOST", "")
    port = environ.get("KUBERNETES_SERVICE_PORT", "")
    if not host or not port:
        raise ValueError(
            "api_server is empty and KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT are not set: "
            "not running in a cluster"
        )
    account = Path(service_account_dir)
    if not (account / "token").is_file():
        raise ValueError(f"no service account token at {account / 'token'}")
    if config.namespaces.own_namespace:
        own = (account / "namespace").read_text().strip()
        if not own:
            raise ValueError(f"{account / 'namespace'} is empty: cannot tell the pod's namespace")
        names = list(dict.fromkeys([*names, own]))
    http = HttpClientConfig(
        bearer_token_file=str(account / "token"),
        tls_config=TlsConfig(ca_file=str(account / "ca.crt")),
    )
    host = f"[{host}]" if ":" in host else host
    return Connection(f"https://{host}:{port}", http, tuple(names) or ("",))
