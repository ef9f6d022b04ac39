"""`exporters.loadbalancing`: route each series to one of N OTLP members by consistent hashing.

```yaml
exporters:
  loadbalancing:
    routing_key: series          # metric, service, resource, attributes
    routing_attributes: []       # with routing_key: attributes (point first, then resource)
    protocol:
      otlp: {protocol: grpc, compression: gzip, tls: {insecure: true}}   # the otlp exporter's
                                 # keys except endpoint, sending_queue and retry_on_failure
    resolver:
      static: {hostnames: [metricgate-0:4317, metricgate-1:4317]}
      # or dns: {hostname: metricgate.svc, port: 4317, interval: 5s, timeout: 1s}
```

Invariant: a config that validates can be started: exactly one resolver is set, and
`member_config(address)` yields a valid `OtlpExporterConfig` for any `host:port` address.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from metricgate.config.types import ComponentConfig, Duration
from metricgate.exporters.otlp.config import OtlpExporterConfig
from metricgate.pipeline.queue import ExporterConfig

_NOT_PER_MEMBER = ("endpoint", "sending_queue", "retry_on_failure")
_PLACEHOLDER = "member.invalid:4317"


class ProtocolConfig(ComponentConfig):
    """`protocol`: how each member is reached; only `otlp` exists."""

    otlp: dict[str, Any] = {}
    """The `otlp` exporter's config without `endpoint` (each member's address is the endpoint)."""

    @field_validator("otlp")
    @classmethod
    def _check_otlp(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in _NOT_PER_MEMBER:
            if key in value:
                raise ValueError(
                    f"{key} is not allowed here: "
                    + (
                        "the resolver gives each member's endpoint"
                        if key == "endpoint"
                        else "set it on the loadbalancing exporter itself"
                    )
                )
        try:
            OtlpExporterConfig.model_validate({**value, "endpoint": _PLACEHOLDER})
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in error['loc']) or 'otlp'}: {error['msg']}"
                for error in exc.errors()
            )
            raise ValueError(problems) from None
        return value


class StaticResolverConfig(ComponentConfig):
    """`resolver.static`: a fixed member list."""

    hostnames: list[str] = Field(min_length=1)
    """Member addresses, `host:port` (or URLs with `protocol.otlp.protocol: http`)."""

    @field_validator("hostnames")
    @classmethod
    def _check_hostnames(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("hostnames must be unique")
        return value


class DnsResolverConfig(ComponentConfig):
    """`resolver.dns`: members are the addresses `hostname` resolves to, refreshed."""

    hostname: str = Field(min_length=1)
    port: int = Field(default=4317, ge=1, le=65535)
    interval: Duration = Field(default=5.0, gt=0)
    """How often to resolve again."""
    timeout: Duration = Field(default=1.0, gt=0)
    """Deadline of one resolution; on failure the previous members stay."""


class ResolverConfig(ComponentConfig):
    """`resolver`: exactly one of `static` and `dns`."""

    static: StaticResolverConfig | None = None
    dns: DnsResolverConfig | None = None

    @model_validator(mode="after")
    def _one(self) -> ResolverConfig:
        if (self.static is None) == (self.dns is None):
            raise ValueError("expected exactly one of resolver.static and resolver.dns")
        return self


class LoadBalancingExporterConfig(ExporterConfig):
    """`exporters.loadbalancing`: see the module docstring."""

    routing_key: Literal["series", "metric", "service", "resource", "attributes"] = "series"
    routing_attributes: list[str] = []
    protocol: ProtocolConfig = ProtocolConfig()
    resolver: ResolverConfig

    @model_validator(mode="after")
    def _check(self) -> LoadBalancingExporterConfig:
        if self.routing_key == "attributes" and not self.routing_attributes:
            raise ValueError("routing_key attributes needs routing_attributes")
        if self.routing_key != "attributes" and self.routing_attributes:
            raise ValueError("routing_attributes only applies to routing_key attributes")
        for address in self.resolver.static.hostnames if self.resolver.static else ():
            try:
                self.member_config(address)
            except ValidationError as exc:
                raise ValueError(
                    f"resolver.static.hostnames: {address!r}: {exc.errors()[0]['msg']}"
                ) from None
        return self

    def member_config(self, address: str) -> OtlpExporterConfig:
        """The otlp exporter config that sends to the member at `address`."""
        return OtlpExporterConfig.model_validate({**self.protocol.otlp, "endpoint": address})
