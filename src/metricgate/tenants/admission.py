"""The admission check a listener runs once per request, before it reads the body.

`ListenerGuard.admit(headers, peer, peer_cert)` authenticates (cache first), resolves the tenant
(the listener's tenant header only where the principal is a delegate), checks the tenant's role
and, on write listeners, its receiver rights, and refuses early when the tenant's rate bucket is
empty, so an over-limit tenant costs no decoding. After decoding, the listener calls
`tenant.charge(points)`, filters the batch with `tenant.rights` (partial success) and stamps it
with `TenantStamp`. Read listeners (`role="read"`: a scrape page) check the role only: neither
the receivers a tenant may send to nor its ingestion rate concern what it may read.

Refusals raise the classes of `metricgate.errors`, each knowing its HTTP status and gRPC code:
`Unauthenticated` 401, `PermissionDenied` 403, `RateLimitError` 429 (+ Retry-After).

Invariant: a listener without `auth` admits everyone with no principal and no tenant (today's
behaviour); a listener with `auth` never admits a request without both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from metricgate.config.auth import AuthSettings
from metricgate.errors import AccessError, RateLimitError
from metricgate.extensions.authenticator import Authenticator, Headers
from metricgate.extensions.principal import AuthEvent, Principal
from metricgate.tenants.policy import TenantDirectory, TenantPolicy


@dataclass(frozen=True, slots=True)
class Admitted:
    """Who a request is from: both None on a listener without `auth`."""

    principal: Principal | None
    tenant: TenantPolicy | None


OPEN = Admitted(None, None)


class ListenerGuard:
    """Admission for one listener (see module docstring)."""

    def __init__(
        self,
        receiver_id: str,
        settings: AuthSettings | None,
        authenticator: Authenticator | None,
        directory: TenantDirectory,
        role: str = "write",
    ) -> None:
        if (settings is None) != (authenticator is None):
            raise ValueError("auth settings and an authenticator go together")
        self.receiver_id = receiver_id
        self.authenticator = authenticator
        self.directory = directory
        self.role = role
        self._header = settings.tenant_header.lower() if settings is not None else ""
        self.on_event: Callable[[AuthEvent], None] | None = None
        """Where refusals after authentication go (the audit log)."""

    async def admit(self, headers: Headers, peer: str, peer_cert: bytes | None = None) -> Admitted:
        authenticator = self.authenticator
        if authenticator is None:
            return OPEN
        principal = await authenticator.authenticate(headers, peer, peer_cert)
        requested = (headers.get(self._header) or "") if self._header else ""
        tenant: TenantPolicy | None = None
        try:
            tenant = self.directory.resolve(principal, requested)
            tenant.require(self.role)
            if self.role != "write":
                return Admitted(principal, tenant)
            tenant.may_receive(self.receiver_id)
        except AccessError as exc:
            self._emit("access_denied", peer, principal.name, str(exc), tenant)
            raise
        wait = tenant.rate_wait()
        if wait > 0:
            self._emit("tenant_limit", peer, principal.name, f"rate limit of {tenant.id!r}", tenant)
            raise RateLimitError(
                f"tenant {tenant.id!r} is over its ingestion rate; retry in {wait:.2g} s",
                retry_after=wait,
            )
        return Admitted(principal, tenant)

    def _emit(
        self, kind: str, peer: str, principal: str, reason: str, tenant: TenantPolicy | None
    ) -> None:
        if self.on_event is not None and self.authenticator is not None:
            self.on_event(
                AuthEvent(
                    kind,
                    self.authenticator.extension_id,
                    peer,
                    principal,
                    reason,
                    tenant.id if tenant is not None else "",
                )
            )
