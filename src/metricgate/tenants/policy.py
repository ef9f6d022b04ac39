"""A tenant's compiled settings, and the directory that resolves principals to tenants.

`TenantDirectory.resolve(principal, requested)` decides whose data a request carries:

1. the tenant the credential names (token entry, JWT claim, certificate field), else
2. the tenant whose `principals` lists the principal, else
3. the principal's own name (`alice` writes as tenant `alice`);

then, if the request names a tenant in the listener's tenant header (`X-Scope-OrgID`) and it is
another one, the principal must be among that tenant's `delegates`, or the answer is 403. With a
`tenants:` section, a tenant that is not listed gets the `"*"` entry's settings, or 403 when there
is none; without the section every tenant is allowed and unlimited.

Invariant: a client never chooses its tenant beyond what the configuration grants its principal;
every refusal is a `PermissionDenied` naming the principal and tenant, never a credential.
"""

from __future__ import annotations

from dataclasses import dataclass

from metricgate.config.tenants import DEFAULT_TENANT, TenantConfig, TenantsConfig, check_tenant_id
from metricgate.errors import PermanentError, PermissionDenied, RateLimitError
from metricgate.extensions.principal import Principal
from metricgate.extensions.ratelimit import TokenBucket
from metricgate.tenants.rights import MetricRights


class TenantPolicy:
    """One tenant's rights and limits, ready for the request path."""

    __slots__ = ("bucket", "config", "id", "rights", "roles")

    def __init__(self, tenant_id: str, config: TenantConfig) -> None:
        self.id = tenant_id
        self.config = config
        self.rights = MetricRights(config.allow_metrics, config.deny_metrics)
        self.roles = frozenset(config.roles)
        limit = config.rate_limit
        self.bucket = TokenBucket(limit.points_per_second, limit.capacity) if limit else None

    def require(self, role: str) -> None:
        """PermissionDenied unless the tenant has `role` (`admin` implies every role)."""
        if role not in self.roles and "admin" not in self.roles:
            raise PermissionDenied(f"tenant {self.id!r} does not have the {role} role")

    def can(self, role: str) -> bool:
        return role in self.roles or "admin" in self.roles

    def may_receive(self, receiver_id: str) -> None:
        allowed = self.config.receivers
        if allowed is not None and receiver_id not in allowed:
            raise PermissionDenied(f"tenant {self.id!r} may not send to receiver {receiver_id!r}")

    def may_enter(self, pipeline_id: str) -> bool:
        allowed = self.config.pipelines
        return allowed is None or pipeline_id in allowed

    def rate_wait(self) -> float:
        """Seconds until this tenant may send again (0 now): checked before decoding a body."""
        return 0.0 if self.bucket is None else self.bucket.wait_time()

    def charge(self, points: int) -> None:
        """Take `points` from the rate limit, or refuse the request (nothing is taken then)."""
        bucket = self.bucket
        if bucket is None:
            return
        wait = bucket.take(points)
        if wait == 0:
            return
        limit = self.config.rate_limit
        assert limit is not None
        if wait == float("inf"):
            raise PermanentError(
                f"a request of {points} points is over tenant {self.id!r}'s burst of "
                f"{limit.capacity:g}; send smaller requests or raise "
                f"tenants.{self.id}.rate_limit.burst"
            )
        raise RateLimitError(
            f"tenant {self.id!r} is over its ingestion rate of {limit.points_per_second:g} "
            f"points/s (burst {limit.capacity:g}); retry in {wait:.2g} s or raise "
            f"tenants.{self.id}.rate_limit",
            retry_after=wait,
        )

    def request_size_limit(self, listener_limit: int) -> int:
        """The body size this tenant may send to a listener whose own limit is `listener_limit`."""
        own = self.config.max_request_size
        return listener_limit if own is None else min(own, listener_limit)


@dataclass(frozen=True, slots=True)
class Resolved:
    """The outcome of resolution: the principal and the tenant it writes as."""

    principal: Principal
    tenant: TenantPolicy


class TenantDirectory:
    """Resolves principals to tenant policies (see module docstring); answers are remembered."""

    def __init__(self, config: TenantsConfig | None, max_entries: int = 10_000) -> None:
        self._tenants = dict(config.root) if config is not None else None
        self._home = {
            principal: tenant_id
            for tenant_id, tenant in (self._tenants or {}).items()
            for principal in tenant.principals
        }
        self._policies: dict[str, TenantPolicy] = {}
        self._resolved: dict[tuple[str, str, str], TenantPolicy] = {}
        self.max_entries = max_entries

    def policy(self, tenant_id: str) -> TenantPolicy:
        """The policy of `tenant_id`; PermissionDenied when the configuration has no room for it."""
        policy = self._policies.get(tenant_id)
        if policy is not None:
            return policy
        try:
            check_tenant_id(tenant_id)
        except ValueError as exc:
            raise PermissionDenied(str(exc)) from None
        tenants = self._tenants
        if tenants is None:
            config = TenantConfig()
        elif tenant_id in tenants and tenant_id != DEFAULT_TENANT:
            config = tenants[tenant_id]
        elif DEFAULT_TENANT in tenants:
            config = tenants[DEFAULT_TENANT]
        else:
            raise PermissionDenied(f"tenant {tenant_id!r} is not configured under tenants")
        if len(self._policies) >= self.max_entries:
            # Forget unlisted tenants first: listed ones keep their rate-limit state.
            for key in [k for k in self._policies if tenants is None or k not in tenants]:
                del self._policies[key]
        policy = self._policies[tenant_id] = TenantPolicy(tenant_id, config)
        return policy

    def home(self, principal: Principal) -> str:
        """The tenant a principal writes as when the request names none."""
        return principal.tenant or self._home.get(principal.name) or principal.name

    def resolve(self, principal: Principal, requested: str = "") -> TenantPolicy:
        """The tenant `principal` writes as; `requested` is the tenant header's value, if any."""
        key = (principal.name, principal.tenant, requested)  # strings hash once, Principals not
        policy = self._resolved.get(key)
        if policy is not None:
            return policy
        home = self.home(principal)
        wanted = requested.strip() or home
        if "|" in wanted:
            raise PermissionDenied("a request writes for exactly one tenant; got several")
        if wanted != home:
            tenant = (self._tenants or {}).get(wanted)
            if tenant is None or wanted == DEFAULT_TENANT or principal.name not in tenant.delegates:
                raise PermissionDenied(
                    f"principal {principal.name!r} may not act for tenant {wanted[:150]!r}"
                )
        policy = self.policy(wanted)
        if len(self._resolved) >= self.max_entries:
            self._resolved.clear()
        self._resolved[key] = policy
        return policy
