"""`mtls`: principal and tenant from the fields of a client certificate."""

from __future__ import annotations

import pytest

from metricgate.errors import Unauthenticated
from metricgate.extensions.mtls import MtlsAuthConfig, MtlsAuthenticator
from tests.support.x509 import CertificateAuthority

CA = CertificateAuthority()
CERT = CA.issue(
    "agent-7",
    dns=["agent-7.team-a.svc"],
    uris=["spiffe://example.org/ns/team-a/sa/agent"],
    emails=["agent@example.org"],
    organization="team-a",
)


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("subject_cn", "agent-7"),
        ("san_dns", "agent-7.team-a.svc"),
        ("san_uri", "spiffe://example.org/ns/team-a/sa/agent"),
        ("san_email", "agent@example.org"),
        ("subject_o", "team-a"),
    ],
)
async def test_principal_from_each_field(field: str, expected: str) -> None:
    auth = MtlsAuthenticator("mtls", MtlsAuthConfig(principal_from=field))  # type: ignore[arg-type]
    principal = await auth.authenticate({}, "a", CERT.der)
    assert principal.name == expected
    assert dict(principal.attributes)["subject"] == "O=team-a,CN=agent-7"


async def test_tenant_from_the_organization_and_pem_input() -> None:
    auth = MtlsAuthenticator("mtls", MtlsAuthConfig(tenant_from="subject_o"))
    principal = await auth.authenticate({}, "a", CERT.cert_pem)
    assert (principal.name, principal.tenant) == ("agent-7", "team-a")
    bare = CA.issue("no-org")
    with pytest.raises(Unauthenticated, match="has no subject_o to name a tenant"):
        await auth.authenticate({}, "a", bare.der)


async def test_no_certificate_or_missing_field_is_refused() -> None:
    auth = MtlsAuthenticator("mtls", MtlsAuthConfig(principal_from="san_uri"))
    assert auth.requires_client_certificate
    with pytest.raises(Unauthenticated, match="authentication required"):
        await auth.authenticate({}, "a", None)
    with pytest.raises(Unauthenticated, match="has no san_uri"):
        await auth.authenticate({}, "a", CA.issue("plain").der)
    with pytest.raises(Unauthenticated, match="cannot be parsed"):
        await auth.authenticate({}, "a", b"garbage")
