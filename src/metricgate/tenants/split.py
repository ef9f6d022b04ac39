"""Whose data a batch holds: the tenant of each resource, and a batch split per tenant.

The gateway stamps the tenant on every resource it admits (`TenantStamp`: resource attribute
`tenant.id`), so the components downstream that keep tenants apart (routing, per-tenant
cardinality budgets, the exporters' tenant header) read it there: once per resource, which a
batch holds once per metric group, never per point.

`TenantSplitter.tenant(resource)` is `""` for a resource without the attribute, and `None` for
one whose value is not a valid tenant id (one no listener would have stamped, for example sent by
a client of a listener without `auth`): such a value could not go into `X-Scope-OrgID`, and each
component says what it does with it. `split(batch)` groups a batch's metric groups by tenant.

Invariant: answers are computed once per resource and remembered in a bounded table; a split
keeps the metric groups (shared, never copied) in their order within each tenant.
"""

from __future__ import annotations

from typing import Final

from metricgate.config.tenants import check_tenant_id
from metricgate.model import Batch, MetricPoints, Resource

TENANT_ATTRIBUTE: Final = "tenant.id"
"""The resource attribute the gateway stamps a request's tenant in."""


class TenantSplitter:
    """Reads the tenant of resources from one attribute (see module docstring)."""

    __slots__ = ("_known", "attribute", "max_entries")

    def __init__(self, attribute: str = TENANT_ATTRIBUTE, max_entries: int = 100_000) -> None:
        self.attribute = attribute
        self.max_entries = max_entries
        self._known: dict[Resource, str | None] = {}

    def tenant(self, resource: Resource) -> str | None:
        """The tenant of `resource`: "" without one, None if its value is not a tenant id."""
        known = self._known
        try:
            return known[resource]
        except KeyError:
            pass
        value = resource.get(self.attribute)
        tenant: str | None
        if value is None or value == "":
            tenant = ""
        else:
            try:
                tenant = check_tenant_id(value) if isinstance(value, str) else None
            except ValueError:
                tenant = None
        if len(known) >= self.max_entries:
            known.clear()
        known[resource] = tenant
        return tenant

    def split(self, batch: Batch) -> list[tuple[str | None, Batch]]:
        """`batch` as one batch per tenant, in the order tenants first appear (`batch` itself
        when it holds one tenant)."""
        tenant = self.tenant
        groups: dict[str | None, list[MetricPoints]] = {}
        for group in batch.metrics:
            found = tenant(group.metric.resource)
            listed = groups.get(found)
            if listed is None:
                groups[found] = [group]
            else:
                listed.append(group)
        if len(groups) == 1:
            return [(next(iter(groups)), batch)]
        return [(found, Batch(listed)) for found, listed in groups.items()]
