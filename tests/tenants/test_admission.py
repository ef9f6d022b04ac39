"""The listener guard: authentication, tenant header, rights and the early rate check together."""

from __future__ import annotations

import pytest

from metricgate.config.auth import AuthSettings
from metricgate.config.tenants import TenantsConfig
from metricgate.errors import PermissionDenied, RateLimitError, Unauthenticated
from metricgate.extensions import AuthEvent
from metricgate.extensions.bearer import BearerTokenAuthConfig, BearerTokenAuthenticator
from metricgate.tenants import OPEN, ListenerGuard, TenantDirectory


def guard() -> ListenerGuard:
    auth = BearerTokenAuthenticator(
        "bearertokenauth",
        BearerTokenAuthConfig.model_validate(
            {
                "tokens": [
                    {"token": "tok-a", "principal": "agent-a", "tenant": "team-a"},
                    {"token": "tok-p", "principal": "proxy"},
                    {"token": "tok-r", "principal": "reader"},
                ]
            }
        ),
    )
    tenants = TenantsConfig.model_validate(
        {
            "team-a": {"rate_limit": {"points_per_second": 1, "burst": 5}},
            "team-b": {"delegates": ["proxy"]},
            "proxy": {},
            "reader": {"roles": ["read"]},
        }
    )
    return ListenerGuard(
        "otlp", AuthSettings(authenticator="bearertokenauth"), auth, TenantDirectory(tenants)
    )


async def test_admission_outcomes() -> None:
    g = guard()
    events: list[AuthEvent] = []
    g.on_event = events.append
    admitted = await g.admit({"authorization": "Bearer tok-a"}, "10.0.0.1")
    assert (admitted.principal.name, admitted.tenant.id) == ("agent-a", "team-a")  # type: ignore[union-attr]
    on_behalf = await g.admit({"authorization": "Bearer tok-p", "x-scope-orgid": "team-b"}, "p")
    assert on_behalf.tenant.id == "team-b"  # type: ignore[union-attr]
    with pytest.raises(Unauthenticated):
        await g.admit({}, "10.0.0.1")
    with pytest.raises(PermissionDenied, match="may not act for tenant 'team-b'"):
        await g.admit({"authorization": "Bearer tok-a", "x-scope-orgid": "team-b"}, "10.0.0.1")
    with pytest.raises(PermissionDenied, match="does not have the write role"):
        await g.admit({"authorization": "Bearer tok-r"}, "10.0.0.9")
    admitted.tenant.charge(5)  # type: ignore[union-attr]
    with pytest.raises(RateLimitError) as limited:  # refused before the body is read
        await g.admit({"authorization": "Bearer tok-a"}, "10.0.0.1")
    assert limited.value.retry_after > 0
    assert [e.kind for e in events] == ["access_denied", "access_denied", "tenant_limit"]


async def test_listener_without_auth_is_open() -> None:
    open_guard = ListenerGuard("otlp", None, None, TenantDirectory(None))
    assert await open_guard.admit({}, "x") is OPEN
