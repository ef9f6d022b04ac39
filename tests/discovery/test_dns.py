"""dns_sd_configs against a local UDP DNS server: SRV, A, AAAA, MX, NXDOMAIN, failures."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import dns.asyncresolver
import pytest
from pydantic import ValidationError

from metricgate.config.errors import format_validation_error
from metricgate.discovery import DiscoveryConfigs, DnsDiscoverer, DnsSDConfig, discoverers
from tests.discovery.collect import Received, running
from tests.discovery.dns_server import Zone, start


@pytest.fixture
async def dns_zone() -> AsyncIterator[tuple[Zone, dns.asyncresolver.Resolver]]:
    zone = Zone()
    transport, resolver = await start(zone)
    yield zone, resolver
    transport.close()


def dns_discoverer(
    resolver: dns.asyncresolver.Resolver, received: Received, **keys: object
) -> DnsDiscoverer:
    config = DnsSDConfig.model_validate({"refresh_interval": "50ms", **keys})
    return DnsDiscoverer(config, "job/dns/0", received.refreshed, resolver)


async def test_srv_records(dns_zone: tuple[Zone, dns.asyncresolver.Resolver]) -> None:
    zone, resolver = dns_zone
    zone.records[("_metrics._tcp.example.test.", "SRV")] = [
        "10 50 9100 node-a.example.test.",
        "10 50 9200 node-b.example.test.",
    ]
    received = Received()
    discoverer = dns_discoverer(resolver, received, names=["_metrics._tcp.example.test"])
    async with running(discoverer, received) as got:
        await got.wait_for(lambda: got.sends)
        assert [g.source for g in got.sends[0]] == ["job/dns/0/_metrics._tcp.example.test"]
        assert got.targets() == [
            {
                "__address__": "node-a.example.test:9100",
                "__meta_dns_name": "_metrics._tcp.example.test",
                "__meta_dns_srv_record_target": "node-a.example.test.",
                "__meta_dns_srv_record_port": "9100",
            },
            {
                "__address__": "node-b.example.test:9200",
                "__meta_dns_name": "_metrics._tcp.example.test",
                "__meta_dns_srv_record_target": "node-b.example.test.",
                "__meta_dns_srv_record_port": "9200",
            },
        ]
        assert ("_metrics._tcp.example.test.", "SRV") in zone.queries


async def test_a_aaaa_and_mx_use_the_configured_port(
    dns_zone: tuple[Zone, dns.asyncresolver.Resolver],
) -> None:
    zone, resolver = dns_zone
    zone.records[("web.example.test.", "A")] = ["10.0.0.1", "10.0.0.2"]
    zone.records[("alias.example.test.", "CNAME")] = ["web.example.test."]
    zone.records[("web.example.test.", "AAAA")] = ["fd00::1"]
    zone.records[("example.test.", "MX")] = ["10 mail.example.test."]

    received = Received()
    discoverer = dns_discoverer(
        resolver, received, names=["web.example.test", "alias.example.test"], type="a", port=80
    )
    async with running(discoverer, received) as got:
        await got.wait_for(lambda: len(got.groups) == 2)
        assert [(t["__address__"], t["__meta_dns_name"]) for t in got.targets()] == [
            ("10.0.0.1:80", "alias.example.test"),
            ("10.0.0.1:80", "web.example.test"),
            ("10.0.0.2:80", "alias.example.test"),
            ("10.0.0.2:80", "web.example.test"),
        ]
        assert all(len(target) == 2 for target in got.targets())

    received = Received()
    discoverer = dns_discoverer(
        resolver, received, names=["web.example.test"], type="AAAA", port=81
    )
    async with running(discoverer, received) as got:
        await got.wait_for(lambda: got.groups)
        assert got.addresses() == ["[fd00::1]:81"]

    received = Received()
    discoverer = dns_discoverer(resolver, received, names=["example.test"], type="MX", port=25)
    async with running(discoverer, received) as got:
        await got.wait_for(lambda: got.groups)
        assert got.targets() == [
            {
                "__address__": "mail.example.test:25",
                "__meta_dns_name": "example.test",
                "__meta_dns_mx_record_target": "mail.example.test.",
            }
        ]


async def test_changes_nxdomain_and_failures(
    dns_zone: tuple[Zone, dns.asyncresolver.Resolver], caplog: pytest.LogCaptureFixture
) -> None:
    zone, resolver = dns_zone
    zone.records[("a.example.test.", "A")] = ["10.0.0.1"]
    zone.records[("b.example.test.", "A")] = ["10.0.1.1"]
    received = Received()
    discoverer = dns_discoverer(
        resolver, received, names=["a.example.test", "b.example.test"], type="A", port=9100
    )
    async with running(discoverer, received) as got:
        await got.wait_for(lambda: got.addresses() == ["10.0.0.1:9100", "10.0.1.1:9100"])

        zone.records[("a.example.test.", "A")] = ["10.0.0.1", "10.0.0.3"]
        await got.wait_for(lambda: "10.0.0.3:9100" in got.addresses())

        # SERVFAIL: b keeps its targets, the failure is logged once and counted.
        with caplog.at_level(logging.WARNING, "metricgate.discovery"):
            zone.servfail.add("b.example.test.")
            failed = got.refreshes.count(("dns", True))
            await got.wait_for(lambda: got.refreshes.count(("dns", True)) >= failed + 3)
        assert "10.0.1.1:9100" in got.addresses()
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "b.example.test" in warnings[0], warnings

        # The name stops existing: its targets go.
        zone.servfail.clear()
        del zone.records[("b.example.test.", "A")]
        await got.wait_for(lambda: got.addresses() == ["10.0.0.1:9100", "10.0.0.3:9100"])
        assert got.refreshes[-1] == ("dns", False)


async def test_unanswered_queries_time_out_and_keep_nothing_at_start() -> None:
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = 9  # nothing answers
    resolver.lifetime = 0.2
    received = Received()
    async with running(
        dns_discoverer(resolver, received, names=["x.test"], type="A", port=1), received
    ) as got:
        await got.wait_for(lambda: got.sends)
        assert got.sends == [[]] and got.refreshes[0] == ("dns", True)


def test_builder_and_defaults() -> None:
    configs = DiscoveryConfigs.model_validate({"dns_sd_configs": [{"names": ["_x._tcp.svc"]}]})
    [found] = discoverers(configs, "job")
    assert isinstance(found, DnsDiscoverer)
    assert (found.config.type, found.config.port, found.config.refresh_interval) == ("SRV", 0, 30.0)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"names": []}, "dns_sd_configs[0].names: expected at least one DNS name"),
        ({}, "dns_sd_configs[0].names: required key is missing"),
        (
            {"names": ["a"], "type": "TXT"},
            "dns_sd_configs[0].type: expected one of SRV, A, AAAA, MX",
        ),
        ({"names": ["a"], "type": "A"}, "dns_sd_configs[0].port: a port is required"),
        ({"names": ["a"], "type": "MX", "port": 70000}, "dns_sd_configs[0].port: expected a port"),
        ({"names": ["a b"]}, "dns_sd_configs[0].names: expected DNS names"),
    ],
)
def test_config_errors_name_the_key(entry: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        DiscoveryConfigs.model_validate({"dns_sd_configs": [entry]})
    problems = format_validation_error(caught.value, "", DiscoveryConfigs)
    assert any(problem.startswith(message) for problem in problems), problems
