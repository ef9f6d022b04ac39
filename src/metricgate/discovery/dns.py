"""`dns_sd_configs`: targets from DNS records of some names, queried every `refresh_interval` (30s).

`type` SRV (the default) gives one target per record at the record's target and port; A and AAAA
give one per address, MX one per mail exchanger, all at the configured `port`. Targets carry
`__meta_dns_name` (the name queried) and, for SRV, `__meta_dns_srv_record_target` (with its
trailing dot, as the record has it) and `__meta_dns_srv_record_port`; for MX,
`__meta_dns_mx_record_target`. A name that does not exist (NXDOMAIN) has no targets; a name whose
query fails (timeout, SERVFAIL, no server answers) keeps its last targets and is logged,
rate-limited. Queries go to the servers of /etc/resolv.conf, with its search domains.

Invariant: one group per configured name, sourced by the name, even when it has no targets.
"""

from __future__ import annotations

import asyncio

import dns.asyncresolver
import dns.rdatatype
import dns.resolver
from dns.rdtypes.ANY.MX import MX
from dns.rdtypes.IN.A import A
from dns.rdtypes.IN.AAAA import AAAA
from dns.rdtypes.IN.SRV import SRV
from pydantic import Field, ValidationInfo, field_validator

from metricgate.config.types import ComponentConfig
from metricgate.discovery.refresh import Interval, PeriodicDiscoverer
from metricgate.discovery.targets import (
    OnRefresh,
    TargetGroup,
    ignore_refresh,
    join_host_port,
)
from metricgate.errors import describe

RECORD_TYPES = ("SRV", "A", "AAAA", "MX")


class DnsSDConfig(ComponentConfig):
    """One `dns_sd_configs` entry: `names`, `type` (SRV), `port`, `refresh_interval` (30s)."""

    names: list[str]
    type: str = "SRV"
    port: int = Field(default=0, validate_default=True)
    refresh_interval: Interval = 30.0

    @field_validator("names")
    @classmethod
    def _names(cls, names: list[str]) -> list[str]:
        if not names:
            raise ValueError("expected at least one DNS name to query")
        for name in names:
            if not name.strip(". ") or any(char.isspace() for char in name):
                raise ValueError(f"expected DNS names, got {name!r}")
        return names

    @field_validator("type")
    @classmethod
    def _type(cls, kind: str) -> str:
        if kind.upper() not in RECORD_TYPES:
            raise ValueError(f"expected one of {', '.join(RECORD_TYPES)}, got {kind!r}")
        return kind.upper()

    @field_validator("port")
    @classmethod
    def _port(cls, port: int, info: ValidationInfo) -> int:
        if not 0 <= port <= 65535:
            raise ValueError(f"expected a port from 1 to 65535, got {port}")
        if port == 0 and info.data.get("type", "SRV") != "SRV":
            raise ValueError("a port is required for every record type but SRV")
        return port


class DnsDiscoverer(PeriodicDiscoverer):
    """Queries the names of one `dns_sd_configs` entry."""

    mechanism = "dns"

    def __init__(
        self,
        config: DnsSDConfig,
        name: str = "dns",
        on_refresh: OnRefresh = ignore_refresh,
        resolver: dns.asyncresolver.Resolver | None = None,
    ) -> None:
        super().__init__(name, config.refresh_interval, on_refresh)
        self.config = config
        self.resolver = resolver
        """The system's (from /etc/resolv.conf) unless given; tests point one at a local server."""
        self.rdtype = dns.rdatatype.from_text(config.type)

    async def refresh(self) -> list[TargetGroup]:
        if self.resolver is None:
            self.resolver = dns.asyncresolver.Resolver()
        outcomes = await asyncio.gather(
            *(self._query(name) for name in self.config.names), return_exceptions=True
        )
        groups = []
        for name, outcome in zip(self.config.names, outcomes, strict=True):
            if isinstance(outcome, TargetGroup):
                self.failures.succeeded(name)
                groups.append(outcome)
                continue
            if not isinstance(outcome, Exception):
                raise outcome  # cancellation
            self.failed(name, describe(outcome))
            last = self.table.get(self._source(name))
            if last is not None:
                groups.append(last)
        return groups

    def _source(self, name: str) -> str:
        return f"{self.name}/{name}"

    async def _query(self, name: str) -> TargetGroup:
        assert self.resolver is not None
        try:
            answer = await self.resolver.resolve(
                name, self.rdtype, search=True, raise_on_no_answer=False
            )
        except dns.resolver.NXDOMAIN:
            return TargetGroup(self._source(name))
        targets = []
        for record in answer.rrset or ():
            labels = {"__meta_dns_name": name}
            if isinstance(record, SRV):
                raw = record.target.to_text()
                labels["__address__"] = join_host_port(raw.rstrip("."), record.port)
                labels["__meta_dns_srv_record_target"] = raw
                labels["__meta_dns_srv_record_port"] = str(record.port)
            elif isinstance(record, MX):
                raw = record.exchange.to_text()
                labels["__address__"] = join_host_port(raw.rstrip("."), self.config.port)
                labels["__meta_dns_mx_record_target"] = raw
            elif isinstance(record, A | AAAA):
                labels["__address__"] = join_host_port(record.address, self.config.port)
            else:
                continue  # a CNAME on the way to the addresses
            targets.append(labels)
        return TargetGroup(self._source(name), tuple(targets))
