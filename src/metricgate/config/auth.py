"""`auth:` on a listener and the top-level `extensions:` section, as the loader sees them.

A listener (receiver protocol, the Prometheus exporter's endpoint, the telemetry server) holds an
optional `auth: AuthSettings` naming an extension id; the loader finds every such reference in
every component config (`auth_references`), so a listener gets checked the day it adds the key.
The config layer knows extensions only through the `ExtensionCatalog` protocol (the extension
registry satisfies it), so it never imports the extensions themselves.

Invariant: a validated config only references extensions that are defined under `extensions:`
and enabled in `service.extensions`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, field_validator

from metricgate.config.sections import check_listed, entry_ids, typed_entries
from metricgate.config.types import ComponentConfig

_HEADER_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]*$")


class AuthSettings(ComponentConfig):
    """`auth`: which authenticator checks this listener's requests, and the tenant header."""

    authenticator: str
    """An extension id from `extensions:` (e.g. `basicauth/agents`)."""
    tenant_header: str = "X-Scope-OrgID"
    """Header a principal may use to act for another tenant it is a delegate of; "" = never."""

    @field_validator("tenant_header")
    @classmethod
    def _header_name(cls, value: str) -> str:
        if not _HEADER_RE.match(value):
            raise ValueError(f"expected an HTTP header name, got {value!r}")
        return value


class ExtensionType(Protocol):
    """What the loader needs of an extension type: its config model."""

    @property
    def config_model(self) -> type[ComponentConfig]: ...


class ExtensionCatalog(Protocol):
    """The extension types the loader may validate `extensions:` bodies with."""

    def get(self, type_name: str) -> ExtensionType | None: ...

    def types(self) -> list[str]: ...


@dataclass(frozen=True)
class ExtensionSpec:
    """A configured extension: its id and validated config (raw when no catalog was given)."""

    id: str
    config: Any

    @property
    def type(self) -> str:
        return self.id.partition("/")[0]


def parse_extensions(
    raw: Any, catalog: ExtensionCatalog | None, problems: list[str]
) -> dict[str, ExtensionSpec]:
    """Validate the `extensions:` section; without a catalog the bodies are kept unchecked."""
    if catalog is None:
        return {
            extension_id: ExtensionSpec(extension_id, body or {})
            for extension_id, body in entry_ids(raw, "extensions", "extension", problems)
        }
    entries = typed_entries(raw, "extensions", "extension", catalog.get, catalog.types, problems)
    return {
        extension_id: ExtensionSpec(extension_id, config) for extension_id, _, config in entries
    }


def auth_references(
    value: Any, path: str, parent: Any = None
) -> Iterator[tuple[str, AuthSettings, Any]]:
    """Every `AuthSettings` inside a config model tree: its key path and the listener holding it."""
    if isinstance(value, AuthSettings):
        yield path, value, parent
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from auth_references(getattr(value, name), f"{path}.{name}", value)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from auth_references(item, f"{path}[{index}]", parent)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from auth_references(item, f"{path}.{key}", parent)


def check_extension_references(
    enabled: list[str],
    declared: set[str],
    extensions: dict[str, ExtensionSpec],
    components: dict[str, Any],
    problems: list[str],
    warnings: list[str],
) -> None:
    """`service.extensions` and every listener's `auth.authenticator` must name enabled ones.

    `components` maps a section-qualified id (`receivers.otlp`) to its validated config. An
    authenticator whose config says `requires_client_certificate` needs a listener with
    `tls.client_ca_file` (mutual TLS), or it could never admit anyone. A listener with `auth` and
    no `tls` is a warning: its credentials would cross the network in plain text.
    """
    seen = check_listed(
        enabled, "service.extensions", declared, "extension", "extensions", problems
    )
    for extension_id in sorted(declared - seen):
        warnings.append(
            f"extensions.{extension_id}: defined but not listed in service.extensions; ignored"
        )
    for component_path, config in components.items():
        for path, settings, listener in auth_references(config, component_path):
            target = settings.authenticator
            if getattr(listener, "tls", None) is None:
                warnings.append(
                    f"{path}: credentials reach this listener in plain text; set "
                    f"{path.rpartition('.')[0]}.tls"
                )
            if target not in declared:
                problems.append(
                    f"{path}.authenticator: references extension {target!r}, which is not "
                    "defined under extensions"
                )
            elif target not in seen:
                problems.append(
                    f"{path}.authenticator: extension {target!r} is not enabled; add it to "
                    "service.extensions"
                )
            elif target in extensions and getattr(
                extensions[target].config, "requires_client_certificate", False
            ):
                tls = getattr(listener, "tls", None)
                if not getattr(tls, "client_ca_file", ""):
                    problems.append(
                        f"{path}.authenticator: {target!r} identifies clients by their "
                        f"certificate; set {path.rpartition('.')[0]}.tls.client_ca_file "
                        "(mutual TLS)"
                    )
