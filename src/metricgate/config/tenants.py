"""The top-level `tenants:` section: per tenant, who writes as it, what it may write, its limits.

Tenant ids follow Mimir's rules (at most 150 bytes of `A-Z a-z 0-9 ! - _ . * ' ( )`, not `.` or
`..`), so a tenant id can go into `X-Scope-OrgID` unchanged. The entry `"*"` holds the settings of
tenants not listed; without it, a principal whose tenant is not listed is refused (403). Without
a `tenants:` section at all, every authenticated principal writes as its own tenant, unlimited.

Invariant: building the model compiles every metric-name regex, so a bad pattern is a config
error naming its key path, never a failure at request time.
"""

from __future__ import annotations

import re
from typing import Literal, Self

from pydantic import Field, RootModel, field_validator, model_validator

from metricgate.config.types import ByteSize, ComponentConfig
from metricgate.regex import GoRegex, RegexError

TENANT_ID_RE = re.compile(r"^[A-Za-z0-9!\-_.*'()]{1,150}$")
DEFAULT_TENANT = "*"

Role = Literal["write", "read", "admin"]


def check_tenant_id(value: str) -> str:
    """`value` if it is a valid tenant id, else ValueError saying why."""
    if value in (".", "..") or not TENANT_ID_RE.match(value):
        raise ValueError(
            f"expected a tenant id of at most 150 characters from A-Z a-z 0-9 ! - _ . * ' ( ) "
            f"(not '.' or '..'), got {value!r}"
        )
    return value


class RateLimit(ComponentConfig):
    """`rate_limit`: a token bucket of points per second."""

    points_per_second: float = Field(gt=0)
    burst: float = Field(default=0, ge=0)
    """Points a tenant may send at once; 0 = `points_per_second`."""

    @property
    def capacity(self) -> float:
        return self.burst or self.points_per_second


def _compile(patterns: list[str]) -> list[str]:
    for index, pattern in enumerate(patterns):
        try:
            GoRegex(pattern)  # Go (RE2) syntax, as every user pattern (metricgate.regex)
        except RegexError as exc:
            raise ValueError(f"item {index}: {exc}") from None
    return patterns


class TenantConfig(ComponentConfig):
    """One tenant's principals, rights and limits; every key is optional."""

    principals: list[str] = []
    """Principals that write as this tenant (besides one named like the tenant)."""
    delegates: list[str] = []
    """Principals that may act for this tenant by sending the listener's tenant header."""
    receivers: list[str] | None = None
    """Receiver ids it may send to; unset = all."""
    pipelines: list[str] | None = None
    """Pipeline ids its data may enter; unset = all."""
    allow_metrics: list[str] = []
    """Metric-name regexes (anchored, Prometheus style) it may write; [] = all."""
    deny_metrics: list[str] = []
    """Metric-name regexes it may not write; they win over `allow_metrics`."""
    roles: list[Role] = ["write", "read"]
    """`write`: send data; `read`: scrape its own series; `admin`: see every tenant's series and
    the admin pages."""
    rate_limit: RateLimit | None = None
    max_series: int | None = Field(default=None, ge=1)
    """Active series this tenant may hold in each cardinality limiter."""
    max_request_size: ByteSize | None = None
    max_connections: int | None = Field(default=None, ge=1)
    """Concurrent connections per listener."""
    max_streams: int | None = Field(default=None, ge=1)
    """Concurrent gRPC streams (calls) per listener."""

    _allow = field_validator("allow_metrics", "deny_metrics")(_compile)


class TenantsConfig(RootModel[dict[str, TenantConfig]]):
    """`tenants:`: tenant id -> `TenantConfig`; `"*"` for tenants not listed."""

    @field_validator("root")
    @classmethod
    def _ids(cls, tenants: dict[str, TenantConfig]) -> dict[str, TenantConfig]:
        for tenant_id in tenants:
            if tenant_id != DEFAULT_TENANT:
                check_tenant_id(tenant_id)
        return tenants

    @model_validator(mode="after")
    def _one_home_per_principal(self) -> Self:
        home: dict[str, str] = {}
        for tenant_id, tenant in self.root.items():
            if tenant_id == DEFAULT_TENANT and (tenant.principals or tenant.delegates):
                raise ValueError(
                    '"*" holds the settings of unlisted tenants; principals and delegates '
                    "belong to a named tenant"
                )
            for principal in tenant.principals:
                if principal in home and home[principal] != tenant_id:
                    raise ValueError(
                        f"principal {principal!r} is listed under both {home[principal]!r} "
                        f"and {tenant_id!r}; a principal writes as one tenant (use delegates)"
                    )
                home[principal] = tenant_id
        return self
