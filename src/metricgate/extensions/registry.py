"""The registry of extension types (authenticators today), built-in and third-party.

An `ExtensionFactory` names a type (`bearertokenauth`), its config model and a `create(id,
config)` function, like component factories. Plugins register through the entry-point group
`metricgate.extensions`, whose entries point at an `ExtensionFactory` or at a zero-argument
callable returning one or a list. The registry satisfies the loader's `ExtensionCatalog`, so
`extensions:` bodies are validated with the same key-path errors as components.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from metricgate.config.plugins import load_plugins
from metricgate.config.types import ComponentConfig
from metricgate.extensions.authenticator import Extension
from metricgate.extensions.basic import BasicAuthConfig, BasicAuthenticator
from metricgate.extensions.bearer import BearerTokenAuthConfig, BearerTokenAuthenticator
from metricgate.extensions.mtls import MtlsAuthConfig, MtlsAuthenticator
from metricgate.extensions.oidc import OidcAuthenticator, OidcConfig

ENTRY_POINT_GROUP = "metricgate.extensions"

ConfigModel = type[ComponentConfig]


@dataclass(frozen=True)
class ExtensionFactory:
    """How to configure and build one extension type."""

    type: str
    config_model: ConfigModel
    create: Callable[[str, Any], Extension]
    description: str = ""


class ExtensionRegistry:
    """Extension factories by type; refuses duplicates so a plugin cannot shadow a built-in."""

    def __init__(self, factories: Iterable[ExtensionFactory] = ()) -> None:
        self._factories: dict[str, ExtensionFactory] = {}
        for factory in factories:
            self.register(factory)

    def register(self, factory: ExtensionFactory) -> None:
        if factory.type in self._factories:
            raise ValueError(f"extension type {factory.type!r} is already registered")
        self._factories[factory.type] = factory

    def get(self, type_name: str) -> ExtensionFactory | None:
        return self._factories.get(type_name)

    def types(self) -> list[str]:
        return sorted(self._factories)

    def create(self, extension_id: str, config: Any) -> Extension:
        """Build the extension `extension_id` (`type[/name]`) from its validated config."""
        factory = self._factories[extension_id.partition("/")[0]]
        return factory.create(extension_id, config)

    def load_entry_points(self) -> None:
        """Register third-party factories; a broken plugin is logged and skipped."""
        load_plugins(ENTRY_POINT_GROUP, ExtensionFactory, self.register)


BUILTIN_EXTENSIONS = [
    ExtensionFactory(
        "bearertokenauth",
        BearerTokenAuthConfig,
        BearerTokenAuthenticator,
        "bearer tokens (inline or a file re-read on change), each mapped to a principal",
    ),
    ExtensionFactory(
        "basicauth", BasicAuthConfig, BasicAuthenticator, "HTTP basic auth, htpasswd with bcrypt"
    ),
    ExtensionFactory(
        "oidc", OidcConfig, OidcAuthenticator, "JWTs verified with an OpenID Connect issuer's keys"
    ),
    ExtensionFactory(
        "mtls", MtlsAuthConfig, MtlsAuthenticator, "principal from a verified client certificate"
    ),
]


def default_extension_registry() -> ExtensionRegistry:
    """Built-in extensions plus installed plugins."""
    registry = ExtensionRegistry(BUILTIN_EXTENSIONS)
    registry.load_entry_points()
    return registry
