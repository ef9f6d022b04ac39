"""`tenant_header` of the exporters that serve many tenants (`prometheus_remote_write`, `otlp`).

Mimir, Cortex and Loki take the tenant of a write from a header, `X-Scope-OrgID`. With
`tenant_header`, an exporter sends each tenant's data in requests of their own, with that header
set to the tenant the gateway stamped on the data (resource attribute `tenant.id`), so one
exporter serves many tenants without mixing them in a request. Written as the header's name, or
as a mapping:

```yaml
tenant_header: X-Scope-OrgID
tenant_header: {name: X-Scope-OrgID, attribute: tenant.id, default_tenant: anonymous}
```

Invariant: a config that validates names a header an HTTP request and gRPC metadata can carry,
and a default tenant that is a valid tenant id.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, field_validator, model_validator

from metricgate.config.tenants import check_tenant_id
from metricgate.config.types import ComponentConfig

_TOKEN = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
"""An HTTP field name (RFC 9110 5.1)."""


class TenantHeader(ComponentConfig):
    """`tenant_header`: one request per tenant, with the tenant in this header."""

    name: str = "X-Scope-OrgID"
    """The header (gRPC: metadata key, lowercased) carrying the tenant."""
    attribute: str = Field(default="tenant.id", min_length=1)
    """The resource attribute holding the tenant (the gateway stamps `tenant.id`)."""
    default_tenant: str = ""
    """Tenant of data that has none (Mimir's single-tenant name is `anonymous`); empty: such
    data is sent without the header."""

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"name": data} if isinstance(data, str) else data

    @field_validator("name")
    @classmethod
    def _header_name(cls, value: str) -> str:
        if not _TOKEN.match(value):
            raise ValueError(f"expected an HTTP header name like X-Scope-OrgID, got {value!r}")
        return value

    @field_validator("default_tenant")
    @classmethod
    def _tenant_id(cls, value: str) -> str:
        return check_tenant_id(value) if value else value


def check_header_clash(tenant_header: TenantHeader | None, headers: dict[str, str]) -> None:
    """ValueError if `headers` sets the tenant header too (one tenant for all, or per request?)."""
    if tenant_header is None:
        return
    for name in headers:
        if name.lower() == tenant_header.name.lower():
            raise ValueError(
                f"headers.{name} and tenant_header both set {tenant_header.name}: use headers "
                "for one fixed tenant, or tenant_header for each request's own"
            )
