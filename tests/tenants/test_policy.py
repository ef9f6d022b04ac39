"""Tenant resolution, roles, receiver rights, rate limits and concurrency limits."""

from __future__ import annotations

import pytest

from metricgate.config.tenants import TenantsConfig
from metricgate.errors import PermanentError, PermissionDenied, RateLimitError
from metricgate.extensions import Principal
from metricgate.tenants import ConcurrencyLimiter, TenantDirectory

TENANTS = TenantsConfig.model_validate(
    {
        "team-a": {"principals": ["ci-bot"], "delegates": ["proxy"], "receivers": ["otlp"]},
        "team-b": {"roles": ["read"], "max_request_size": "1KiB"},
        "ops": {"roles": ["admin"]},
        "alice": {"rate_limit": {"points_per_second": 10, "burst": 20}},
        "*": {"max_streams": 2},
    }
)


def p(name: str, tenant: str = "") -> Principal:
    return Principal(name, "bearertokenauth", tenant)


def test_resolution_order() -> None:
    directory = TenantDirectory(TENANTS)
    assert directory.resolve(p("alice")).id == "alice"  # own name
    assert directory.resolve(p("ci-bot")).id == "team-a"  # listed under principals
    assert directory.resolve(p("ci-bot", tenant="team-b")).id == "team-b"  # the credential says
    assert directory.resolve(p("proxy"), "team-a").id == "team-a"  # a delegate via the header
    assert directory.resolve(p("ci-bot"), "team-a").id == "team-a"  # its own tenant, named
    unlisted = directory.resolve(p("zed"))
    assert (unlisted.id, unlisted.config.max_streams) == ("zed", 2)  # "*" settings


@pytest.mark.parametrize(
    ("principal", "requested", "message"),
    [
        (p("alice"), "team-a", "principal 'alice' may not act for tenant 'team-a'"),
        (p("proxy"), "team-b", "principal 'proxy' may not act for tenant 'team-b'"),
        (p("proxy"), "team-a|team-b", "exactly one tenant"),
        (p("proxy"), "*", "may not act for tenant '*'"),
        (p("bad/name"), "", "expected a tenant id"),
    ],
)
def test_refusals(principal: Principal, requested: str, message: str) -> None:
    with pytest.raises(PermissionDenied, match=message):
        TenantDirectory(TENANTS).resolve(principal, requested)


def test_unlisted_tenants_without_a_default_are_refused() -> None:
    directory = TenantDirectory(TenantsConfig.model_validate({"team-a": {}}))
    with pytest.raises(PermissionDenied, match="tenant 'bob' is not configured under tenants"):
        directory.resolve(p("bob"))
    assert TenantDirectory(None).resolve(p("bob")).config.rate_limit is None  # no section: open


def test_roles_receivers_and_size() -> None:
    directory = TenantDirectory(TENANTS)
    team_a, team_b, ops = (directory.policy(t) for t in ("team-a", "team-b", "ops"))
    team_a.require("write")
    team_a.may_receive("otlp")
    with pytest.raises(PermissionDenied, match="may not send to receiver 'pushgateway'"):
        team_a.may_receive("pushgateway")
    with pytest.raises(PermissionDenied, match="tenant 'team-b' does not have the write role"):
        team_b.require("write")
    assert ops.can("read") and ops.can("admin") and not team_a.can("admin")
    assert team_b.request_size_limit(20 << 20) == 1024
    assert team_a.request_size_limit(20 << 20) == 20 << 20


def test_rate_limit_charges_points() -> None:
    alice = TenantDirectory(TENANTS).policy("alice")
    alice.charge(20)
    assert alice.rate_wait() > 0
    with pytest.raises(
        RateLimitError, match=r"over its ingestion rate of 10 points/s \(burst 20\)"
    ):
        alice.charge(5)
    with pytest.raises(PermanentError, match=r"raise tenants\.alice\.rate_limit\.burst"):
        alice.charge(21)


def test_concurrency_limits_are_per_tenant() -> None:
    limiter = ConcurrencyLimiter("streams")
    with limiter.hold("a", 2), limiter.hold("a", 2):
        with pytest.raises(RateLimitError, match="tenant 'a' already has 2 concurrent streams"):
            limiter.acquire("a", 2)
        with limiter.hold("b", 2):
            assert limiter.open_count("b") == 1
    assert limiter.open_count("a") == 0 and limiter._open == {}
