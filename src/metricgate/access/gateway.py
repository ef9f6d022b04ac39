"""The security layer of one running gateway: its authenticators, tenants, stamps and telemetry.

`GatewayAccess.build(config, telemetry, audit)` creates the extensions `service.extensions`
enables (`default_extension_registry().create(id, config)`) and one `TenantDirectory` over the
`tenants:` section. The service starts the extensions before any listener and stops them after
every listener. A listener with `auth` asks for a `ListenerGuard` (`guard(listener, auth, role)`),
which authenticates a request and resolves its tenant before the body is read; receivers stamp
what a tenant sends with its `TenantStamp` (`stamp(tenant_id)`, one per tenant, kept).

Every authenticator and guard reports here (`on_event`): events go to the audit log and are
counted in own telemetry (`metricgate_auth_failures_total` per authenticator,
`metricgate_tenant_refused_requests_total` per listener, tenant and reason).

Invariant: one directory per gateway, so a tenant's rate bucket is shared by every listener it
sends to, and a tenant's stamp is the same object on every listener (its caches are shared).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Final, Protocol

from metricgate.config import Config
from metricgate.config.auth import AuthSettings
from metricgate.config.tenants import TenantsConfig
from metricgate.errors import ConfigError
from metricgate.extensions import (
    Authenticator,
    AuthEvent,
    Extension,
    ExtensionRegistry,
    default_extension_registry,
)
from metricgate.telemetry.metrics import SelfMetrics
from metricgate.tenants import ListenerGuard, TenantDirectory, TenantStamp

log = logging.getLogger(__name__)

MAX_STAMPS: Final = 10_000
"""Tenants whose stamp (and its per-series cache) is kept; more, and all are dropped at once."""

_REFUSAL_REASONS: Final = {"access_denied": "permission_denied", "tenant_limit": "rate_limited"}


class AuditSink(Protocol):
    """Where security events go (`telemetry.audit.AuditLog`)."""

    def handle(self, event: AuthEvent) -> None: ...

    def admin_access(
        self, authenticator: str, principal: str, address: str, method: str, path: str
    ) -> None: ...


def build_extensions(
    config: Config, registry: ExtensionRegistry | None = None
) -> dict[str, Extension]:
    """The extensions `service.extensions` enables, built from their validated configs."""
    registry = registry or default_extension_registry()
    extensions: dict[str, Extension] = {}
    for extension_id in config.service.extensions:
        spec = config.extensions[extension_id]
        factory = registry.get(spec.type)
        if factory is None:
            raise ConfigError(f"extensions.{extension_id}: unknown extension type {spec.type!r}")
        settings = spec.config
        if isinstance(settings, dict):  # loaded without the extension catalog
            settings = factory.config_model.model_validate(settings)
        extensions[extension_id] = registry.create(extension_id, settings)
    return extensions


class GatewayAccess:
    """Authenticators, the tenant directory and tenant stamps of one gateway (see module)."""

    def __init__(
        self,
        extensions: Mapping[str, Extension],
        tenants: TenantsConfig | None,
        telemetry: SelfMetrics,
        audit: AuditSink | None = None,
    ) -> None:
        self.extensions = dict(extensions)
        self.directory = TenantDirectory(tenants)
        self.telemetry = telemetry
        self.audit = audit
        self._stamps: dict[str, TenantStamp] = {}
        self.anonymous: TenantStamp | None = None
        """The stamp of data without a tenant: set once a receiver authenticates (then the
        gateway has tenants, and a client-sent `tenant.id` from a listener without `auth` is
        taken off, so that unauthenticated data can never pass for a tenant's)."""
        self._started: list[Extension] = []
        for extension in self.extensions.values():
            if isinstance(extension, Authenticator):
                extension.on_event = self._authenticator_event

    @classmethod
    def build(
        cls,
        config: Config,
        telemetry: SelfMetrics,
        audit: AuditSink | None = None,
        registry: ExtensionRegistry | None = None,
    ) -> GatewayAccess:
        return cls(build_extensions(config, registry), config.tenants, telemetry, audit)

    async def start(self) -> None:
        """Start every extension (key fetches, file watches); before any listener starts."""
        for extension in self.extensions.values():
            await extension.start()
            self._started.append(extension)

    async def shutdown(self) -> None:
        """Stop the extensions, last first; after every listener stopped. Idempotent."""
        started, self._started = self._started, []
        for extension in reversed(started):
            try:
                await extension.shutdown()
            except Exception:
                log.exception(
                    "extension failed to shut down", extra={"extension": extension.extension_id}
                )

    def authenticator(self, auth: AuthSettings) -> Authenticator:
        extension = self.extensions.get(auth.authenticator)
        if not isinstance(extension, Authenticator):
            raise ConfigError(
                f"auth.authenticator: {auth.authenticator!r} is not an enabled authenticator"
            )
        return extension

    def guard(
        self, listener: str, auth: AuthSettings | None, role: str = "write"
    ) -> ListenerGuard | None:
        """Admission for listener `listener` (a receiver or exporter id, or `telemetry`); None
        without `auth` (everyone admitted, no tenant)."""
        if auth is None:
            return None
        if role == "write" and self.anonymous is None:
            self.anonymous = TenantStamp.anonymous()
        guard = ListenerGuard(listener, auth, self.authenticator(auth), self.directory, role)
        guard.on_event = self._guard_events(listener)
        return guard

    def stamp(self, tenant_id: str) -> TenantStamp:
        """The stamp of `tenant_id`, one per tenant so its per-series cache is shared."""
        stamp = self._stamps.get(tenant_id)
        if stamp is None:
            if len(self._stamps) >= MAX_STAMPS:
                self._stamps.clear()
            stamp = self._stamps[tenant_id] = TenantStamp(tenant_id)
        return stamp

    def admin_access(
        self, authenticator: str, principal: str, address: str, method: str, path: str
    ) -> None:
        if self.audit is not None:
            self.audit.admin_access(authenticator, principal, address, method, path)

    def _authenticator_event(self, event: AuthEvent) -> None:
        if event.kind == "auth_failure":
            self.telemetry.auth_failures.labels(event.authenticator).inc()
        if self.audit is not None:
            self.audit.handle(event)

    def _guard_events(self, listener: str) -> Callable[[AuthEvent], None]:
        refused = self.telemetry.tenant_refused_requests

        def on_event(event: AuthEvent) -> None:
            reason = _REFUSAL_REASONS.get(event.kind)
            if reason is not None:
                refused.labels(listener, event.tenant, reason).inc()
            if self.audit is not None:
                self.audit.handle(event)

        return on_event
