"""Authentication cost per request: the cached steady state, and the first verification.

For each authenticator, `authenticate()` of a request whose credential was verified before
(the steady state: a header lookup, a clock read, a dict lookup), the full listener admission on
top (tenant resolution, role and receiver checks, rate-bucket check), and the cost of the first,
uncached verification (bearer: SHA-256 and a lookup; basic: bcrypt cost 10; oidc: an RS256
signature; mtls: parsing the certificate). "none" is a coroutine that returns at once: the floor
any async hook costs.

    .venv/bin/python bench/bench_auth.py [--requests 200000]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime
import json
import time
from collections.abc import Awaitable, Callable

import bcrypt
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from metricgate.config.auth import AuthSettings
from metricgate.config.tenants import TenantsConfig
from metricgate.extensions import Authenticator
from metricgate.extensions.basic import BasicAuthConfig, BasicAuthenticator
from metricgate.extensions.bearer import BearerTokenAuthConfig, BearerTokenAuthenticator
from metricgate.extensions.mtls import MtlsAuthConfig, MtlsAuthenticator
from metricgate.extensions.oidc import OidcAuthenticator, OidcConfig, parse_keys
from metricgate.tenants import ListenerGuard, TenantDirectory


def client_certificate() -> bytes:
    """A self-signed client certificate (DER) with CN `agent`."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "agent")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.DER)


async def per_call(fn: Callable[[], Awaitable[object]], count: int) -> float:
    for _ in range(min(count, 1000)):
        await fn()
    start = time.perf_counter()
    for _ in range(count):
        await fn()
    return (time.perf_counter() - start) / count * 1e6


async def first(
    make: Callable[[], Authenticator], headers: dict[str, str], cert: bytes | None
) -> float:
    runs = []
    for _ in range(5):
        auth = make()
        start = time.perf_counter()
        await auth.authenticate(headers, "bench", cert)
        runs.append(time.perf_counter() - start)
    return min(runs) * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200_000)
    count = parser.parse_args().requests

    password_hash = bcrypt.hashpw(b"wonderland", bcrypt.gensalt(10)).decode()
    signing = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwks = jwt.get_algorithm_by_name("RS256").to_jwk(signing.public_key(), as_dict=True)
    token = jwt.encode(
        {"iss": "https://idp", "aud": "mg", "sub": "agent", "exp": int(time.time()) + 3600},
        signing,
        algorithm="RS256",
        headers={"kid": "k"},
    )
    cert = client_certificate()

    def oidc() -> OidcAuthenticator:
        auth = OidcAuthenticator("oidc", OidcConfig(issuer_url="https://idp", audience="mg"))
        auth._keys = parse_keys(json.dumps({"keys": [{**jwks, "kid": "k"}]}).encode())
        return auth

    cases: list[tuple[str, Callable[[], Authenticator], dict[str, str], bytes | None]] = [
        (
            "bearertokenauth",
            lambda: BearerTokenAuthenticator(
                "bearertokenauth",
                BearerTokenAuthConfig(tokens=[{"token": "t0k3n-abcdef", "principal": "agent"}]),  # type: ignore[list-item]
            ),
            {"authorization": "Bearer t0k3n-abcdef"},
            None,
        ),
        (
            "basicauth",
            lambda: BasicAuthenticator(
                "basicauth",
                BasicAuthConfig.model_validate({"htpasswd": {"inline": f"agent:{password_hash}"}}),
            ),
            {"authorization": "Basic " + base64.b64encode(b"agent:wonderland").decode()},
            None,
        ),
        ("oidc", oidc, {"authorization": f"Bearer {token}"}, None),
        ("mtls", lambda: MtlsAuthenticator("mtls", MtlsAuthConfig()), {}, cert),
    ]

    async def nothing() -> None:
        return None

    print(f"{'authenticator':<16} {'cached us':>10} {'admit us':>10} {'first us':>10}")
    print(f"{'none':<16} {await per_call(nothing, count):>10.2f}")
    directory = TenantDirectory(
        TenantsConfig.model_validate({"agent": {"rate_limit": {"points_per_second": 1e12}}})
    )
    for name, make, headers, peer_cert in cases:
        auth = make()
        await auth.authenticate(headers, "bench", peer_cert)
        cached = await per_call(
            lambda a=auth, h=headers, c=peer_cert: a.authenticate(h, "10.0.0.1", c), count
        )
        guard = ListenerGuard("otlp", AuthSettings(authenticator=name), auth, directory)
        admit = await per_call(
            lambda g=guard, h=headers, c=peer_cert: g.admit(h, "10.0.0.1", c), count
        )
        cold = await first(make, headers, peer_cert)
        print(f"{name:<16} {cached:>10.2f} {admit:>10.2f} {cold:>10.0f}")


if __name__ == "__main__":
    asyncio.run(main())
