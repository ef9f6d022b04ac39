"""The loadbalancing exporter's hash ring, routing keys, config and DNS resolver, in isolation."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metricgate.config import load_config_text
from metricgate.errors import ConfigError
from metricgate.exporters.loadbalancing import (
    DnsResolver,
    HashRing,
    LoadBalancingExporter,
    LoadBalancingExporterConfig,
)
from metricgate.exporters.loadbalancing.config import DnsResolverConfig
from metricgate.exporters.loadbalancing.routing import router
from metricgate.model import INTERNER, Batch, MetricPoints, sorted_attributes
from metricgate.pipeline.host import Host
from metricgate.telemetry.metrics import SelfMetrics
from tests.support.batches import metric
from tests.support.loadbalancing import registry

KEYS = [f"series-{i}".encode() for i in range(10_000)]
MEMBERS = [f"10.0.0.{i}:4317" for i in range(1, 6)]


def _owners(ring: HashRing) -> dict[bytes, str]:
    return {key: ring.lookup(key) for key in KEYS}


def test_every_key_maps_to_one_member_of_the_ring() -> None:
    ring = HashRing(MEMBERS)
    owners = _owners(ring)
    assert set(owners.values()) == set(MEMBERS)
    for count in map(list(owners.values()).count, MEMBERS):
        assert count > len(KEYS) / len(MEMBERS) / 2  # no member starves


def test_placement_ignores_member_order_and_duplicates() -> None:
    assert _owners(HashRing(MEMBERS)) == _owners(HashRing([*reversed(MEMBERS), MEMBERS[0]]))


def test_removing_a_member_moves_only_its_keys() -> None:
    before = _owners(HashRing(MEMBERS))
    gone = MEMBERS[2]
    after = _owners(HashRing([m for m in MEMBERS if m != gone]))
    moved = {key for key in KEYS if before[key] != after[key]}
    assert moved == {key for key in KEYS if before[key] == gone}


def test_adding_a_member_moves_about_one_in_n_plus_one_keys_all_to_it() -> None:
    before = _owners(HashRing(MEMBERS))
    added = "10.0.0.99:4317"
    after = _owners(HashRing([*MEMBERS, added]))
    moved = [key for key in KEYS if before[key] != after[key]]
    assert all(after[key] == added for key in moved)
    expected = len(KEYS) / (len(MEMBERS) + 1)
    assert 0.6 * expected < len(moved) < 1.4 * expected


@settings(max_examples=30, deadline=None)
@given(
    st.sets(st.from_regex(r"[a-z]{1,8}:[0-9]{2,5}", fullmatch=True), min_size=2, max_size=6),
    st.lists(st.binary(max_size=20), min_size=1, max_size=50),
)
def test_removal_property(members: set[str], keys: list[bytes]) -> None:
    full = HashRing(members)
    gone = sorted(members)[0]
    rest = HashRing(members - {gone})
    for key in keys:
        assert full.lookup(key) in members
        if full.lookup(key) != gone:
            assert rest.lookup(key) == full.lookup(key)


def test_series_key_covers_name_attributes_and_resource() -> None:
    route = router("series", []).per_series
    assert route is not None
    a, b = metric("m", service="a"), metric("m", service="b")
    one = INTERNER.intern_series(a, (("k", "1"),))
    assert route(one) == route(INTERNER.intern_series(a, (("k", "1"),)))
    assert route(one) != route(INTERNER.intern_series(a, (("k", "2"),)))
    assert route(one) != route(INTERNER.intern_series(b, (("k", "1"),)))
    assert route(one) != route(INTERNER.intern_series(metric("n", service="a"), (("k", "1"),)))


def test_per_metric_keys() -> None:
    a, b = metric("m", service="a"), metric("n", service="a")
    service = router("service", []).per_metric
    by_name = router("metric", []).per_metric
    assert service is not None and by_name is not None
    assert service(a) == service(b)
    assert by_name(a) != by_name(b)
    assert by_name(a) == by_name(metric("m", service="other"))


def test_attributes_key_reads_the_point_then_the_resource() -> None:
    route = router("attributes", ["tenant", "service.name"]).per_series
    assert route is not None
    m = metric("m", service="svc")
    x = INTERNER.intern_series(m, sorted_attributes({"tenant": "t1", "path": "/a"}))
    y = INTERNER.intern_series(m, sorted_attributes({"tenant": "t1", "path": "/b"}))
    z = INTERNER.intern_series(m, sorted_attributes({"tenant": "t2", "path": "/a"}))
    assert route(x) == route(y) != route(z)


def _config(text: str) -> LoadBalancingExporterConfig:
    config = load_config_text(
        f"""
receivers: {{inject: {{}}}}
exporters:
  loadbalancing: {text}
service:
  pipelines: {{metrics: {{receivers: [inject], exporters: [loadbalancing]}}}}
  telemetry: {{metrics: {{address: ""}}}}
""",
        registry(),
        {},
    )
    found = config.exporters["loadbalancing"].config
    assert isinstance(found, LoadBalancingExporterConfig)
    return found


def test_config_defaults_and_member_config() -> None:
    config = _config(
        "{protocol: {otlp: {compression: none, tls: {insecure: true}}},"
        " resolver: {static: {hostnames: [a:4317, b:4317]}}}"
    )
    assert config.routing_key == "series"
    member = config.member_config("a:4317")
    assert member.endpoint == "a:4317" and member.compression == "none" and not member.secure
    dns = _config("{resolver: {dns: {hostname: collectors.svc}}}").resolver.dns
    assert dns is not None and (dns.port, dns.interval, dns.timeout) == (4317, 5.0, 1.0)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{resolver: {}}", "exactly one of resolver.static and resolver.dns"),
        (
            "{resolver: {static: {hostnames: [a:1]}, dns: {hostname: x}}}",
            "exactly one of resolver.static",
        ),
        ("{resolver: {static: {hostnames: [nope]}}}", "hostnames"),
        ("{protocol: {otlp: {endpoint: a:1}}, resolver: {static: {hostnames: [a:1]}}}", "endpoint"),
        ("{protocol: {otlp: {protocol: carrier}}, resolver: {static: {hostnames: [a:1]}}}", "otlp"),
        ("{routing_key: attributes, resolver: {static: {hostnames: [a:1]}}}", "routing_attrib"),
        ("{routing_key: shard, resolver: {static: {hostnames: [a:1]}}}", "routing_key"),
    ],
)
def test_config_errors_name_the_key(text: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        _config(text)


async def test_dns_resolver_reports_only_changes_and_keeps_members_on_failure() -> None:
    answers: list[list[str] | OSError] = [
        ["10.0.0.2:4317", "10.0.0.1:4317", "10.0.0.1:4317"],
        ["10.0.0.1:4317", "10.0.0.2:4317"],
        OSError("SERVFAIL"),
        [],
        ["10.0.0.3:4317"],
    ]

    async def lookup(hostname: str, port: int) -> list[str]:
        answer = answers.pop(0)
        if isinstance(answer, OSError):
            raise answer
        return answer

    seen: list[list[str]] = []

    async def on_change(members: list[str]) -> None:
        seen.append(members)

    resolver = DnsResolver(DnsResolverConfig(hostname="x", interval=3600.0), lookup)
    await resolver.start(on_change)
    try:
        for _ in range(4):
            await resolver.refresh()
    finally:
        await resolver.shutdown()
    assert seen == [["10.0.0.1:4317", "10.0.0.2:4317"], ["10.0.0.3:4317"]]


async def test_routes_are_cached_per_series_and_dropped_when_the_ring_changes() -> None:
    config = _config("{resolver: {static: {hostnames: [a:4317, b:4317, c:4317]}}}")
    exporter = LoadBalancingExporter("loadbalancing", config)
    await exporter.start(Host(SelfMetrics()))
    try:
        m = metric("cached")
        group = MetricPoints(m)
        for i in range(300):
            group.append(INTERNER.intern_series(m, (("k", str(i)),)), 1.0, 1)
        parts = exporter.split([Batch([group])])
        assert sum(p.point_count() for p in parts.values()) == 300
        assert len(parts) == 3
        assert len(exporter._routes) == 300
        await exporter.set_members(["a:4317", "b:4317"])
        assert exporter._routes == {}
        again = exporter.split([Batch([group])])
        assert set(again) == {"a:4317", "b:4317"}
        for member in ("a:4317", "b:4317"):  # only c's series moved
            assert set(parts[member].metrics[0].series) <= set(again[member].metrics[0].series)
    finally:
        await exporter.shutdown()


def test_static_hostnames_are_checked_against_the_member_protocol() -> None:
    http = "{protocol: {otlp: {protocol: http}}, resolver: {static: {hostnames: [%s]}}}"
    assert _config(http % "'http://a:4318/v1/metrics'").member_config(
        "http://a:4318/v1/metrics"
    ).url == ("http://a:4318/v1/metrics")
    with pytest.raises(ConfigError, match="hostnames"):
        _config("{resolver: {static: {hostnames: ['http://a:4318/v1/metrics']}}}")  # grpc: no path


async def test_a_failing_dns_resolution_is_logged_once_per_change(
    caplog: pytest.LogCaptureFixture,
) -> None:
    answers: list[list[str] | OSError] = [
        ["10.0.0.1:4317"],
        OSError("no server"),
        OSError("no server"),
        OSError("no server"),
        [],
        [],
        ["10.0.0.1:4317"],
        ["10.0.0.1:4317"],
    ]

    async def lookup(hostname: str, port: int) -> list[str]:
        answer = answers.pop(0)
        if isinstance(answer, OSError):
            raise answer
        return answer

    async def on_change(members: list[str]) -> None:
        pass

    resolver = DnsResolver(DnsResolverConfig(hostname="x", interval=3600.0), lookup)
    with caplog.at_level(logging.INFO, logger="metricgate"):
        await resolver.start(on_change)
        try:
            for _ in range(7):
                await resolver.refresh()
        finally:
            await resolver.shutdown()
    messages = [r.getMessage() for r in caplog.records if "dns" in r.getMessage()]
    assert messages == [
        "dns resolution failed; keeping the current members",
        "dns resolved no addresses; keeping the current members",
        "dns resolution works again",
    ]
    assert resolver.members == ["10.0.0.1:4317"]
