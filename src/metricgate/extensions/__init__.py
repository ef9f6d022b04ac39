"""Service extensions: authenticators configured under `extensions:` and referenced by id.

A listener's `auth: {authenticator: <id>}` names one; `service.extensions` lists those enabled.
This layer imports only `config`, `model` and `errors`; listeners (receivers, exporters' scrape
endpoints, the telemetry server) call `Authenticator.authenticate` once per request.
"""

from metricgate.extensions.authenticator import (
    Authenticator,
    AuthenticatorConfig,
    CredentialRefused,
    Extension,
    Headers,
)
from metricgate.extensions.principal import AuthEvent, Principal
from metricgate.extensions.ratelimit import KeyedBuckets, TokenBucket
from metricgate.extensions.registry import (
    BUILTIN_EXTENSIONS,
    ExtensionFactory,
    ExtensionRegistry,
    default_extension_registry,
)

__all__ = [
    "BUILTIN_EXTENSIONS",
    "AuthEvent",
    "Authenticator",
    "AuthenticatorConfig",
    "CredentialRefused",
    "Extension",
    "ExtensionFactory",
    "ExtensionRegistry",
    "Headers",
    "KeyedBuckets",
    "Principal",
    "TokenBucket",
    "default_extension_registry",
]
