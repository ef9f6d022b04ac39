"""`processors.routing`: which exporters each tenant's data goes to.

The shape is the OpenTelemetry Collector's `routing` processor (`from_attribute`,
`attribute_source`, `default_exporters`, `table[].exporters`), whose configs users have, with
`tenants: [...]` as the list form of its `value:` (both are accepted):

```yaml
processors:
  routing:
    default_exporters: [prometheus_remote_write/shared]
    table:
      - {tenants: [team-a], exporters: [prometheus_remote_write/team-a]}
      - {value: team-b, exporters: [otlp/team-b, prometheus_remote_write/shared]}
```

Why the processor and not the Collector's newer routing connector: metricgate has no connectors
(pipelines do not feed pipelines), and per-tenant processing needs none either, since the
processors that keep state (`cardinality_limit`) are keyed by tenant themselves. The connector's
`pipelines` would route to whole pipelines; here a route is a list of exporters, as in the
processor. As there, the processor must come last in its pipeline and every exporter it names
must be one of the pipeline's (`pipeline_problems`, checked when the config is loaded).

Invariant: a config that validates names every tenant in at most one route.
"""

from __future__ import annotations

from typing import Any, Self

from pydantic import Field, field_validator, model_validator

from metricgate.config.types import ComponentConfig
from metricgate.tenants.split import TENANT_ATTRIBUTE


class Route(ComponentConfig):
    """One `table` entry: data whose attribute is one of `tenants` goes to `exporters`."""

    tenants: list[str] = Field(min_length=1)
    """Attribute values (tenant ids) of this route; `value: x` is the same as `tenants: [x]`."""
    exporters: list[str] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _value(cls, data: Any) -> Any:
        if isinstance(data, dict) and "value" in data:
            if "tenants" in data:
                raise ValueError("set value (one tenant) or tenants (a list), not both")
            data = {**data, "tenants": [data["value"]]}
            del data["value"]
        return data


class RoutingConfig(ComponentConfig):
    """`processors.routing`: see the module docstring."""

    from_attribute: str = Field(default=TENANT_ATTRIBUTE, min_length=1)
    """The resource attribute routed on; the gateway stamps a request's tenant in `tenant.id`."""
    attribute_source: str = "resource"
    """Only `resource`: see `_resource_only`."""
    default_exporters: list[str] = []
    """Where data goes that no route names (data without a tenant, too); empty: it is dropped,
    counted (`metricgate_processor_dropped_points_total{reason="no_route"}`)."""
    table: list[Route] = Field(min_length=1)

    @field_validator("attribute_source")
    @classmethod
    def _resource_only(cls, value: str) -> str:
        if value != "resource":
            raise ValueError(
                f"expected 'resource', got {value!r}: metricgate stamps a request's tenant on "
                "its resources (tenant.id, decided by the listener's auth and tenant header), "
                "so route with from_attribute: tenant.id"
            )
        return value

    @model_validator(mode="after")
    def _one_route_per_tenant(self) -> Self:
        seen: dict[str, int] = {}
        for index, route in enumerate(self.table):
            for tenant in route.tenants:
                if tenant in seen:
                    raise ValueError(
                        f"tenant {tenant!r} is in table[{seen[tenant]}] and table[{index}]; "
                        "list it in one route (a route may have several exporters)"
                    )
                seen[tenant] = index
        return self

    def pipeline_problems(
        self, path: str, pipeline_id: str, processors: list[str], exporters: list[str]
    ) -> list[str]:
        """What is wrong with using this processor (at `path`) in a pipeline: it must come
        last, and it can only send to the pipeline's own exporters."""
        problems = []
        where = f"service.pipelines.{pipeline_id}"
        if processors[-1] != path.partition(".")[2]:
            problems.append(
                f"{where}.processors: {path.partition('.')[2]!r} must be the last processor: "
                "it hands data to its exporters itself, so processors after it would see nothing"
            )
        named = [
            (f"{path}.table[{i}].exporters[{j}]", exporter)
            for i, route in enumerate(self.table)
            for j, exporter in enumerate(route.exporters)
        ] + [(f"{path}.default_exporters[{j}]", e) for j, e in enumerate(self.default_exporters)]
        for key, exporter in named:
            if exporter not in exporters:
                problems.append(
                    f"{key}: exporter {exporter!r} is not one of {where}.exporters; "
                    "list it there too"
                )
        return problems
