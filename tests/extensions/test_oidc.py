"""`oidc`: JWTs signed by keys a real HTTP issuer serves (discovery + JWKS), or from a file."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from metricgate.errors import PermissionDenied, Unauthenticated, UnavailableError
from metricgate.extensions.oidc import OidcAuthenticator, OidcConfig
from tests.support.poll import wait_until


class Issuer:
    """An OpenID provider on a free port: discovery, JWKS, and a signer for tokens."""

    def __init__(self) -> None:
        self.keys: dict[str, Any] = {
            "k1": rsa.generate_private_key(public_exponent=65537, key_size=2048)
        }
        self.url = ""
        self.jwks_requests = 0

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid, key in self.keys.items():
            algorithm = "RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256"
            public = jwt.get_algorithm_by_name(algorithm).to_jwk(key.public_key(), as_dict=True)
            keys.append({**public, "kid": kid, "use": "sig", "alg": algorithm})
        return {"keys": keys}

    def token(self, kid: str = "k1", algorithm: str = "RS256", **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": self.url, "aud": "metricgate", "sub": "alice", "iat": now, "exp": now + 300}
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(body, self.keys[kid], algorithm=algorithm, headers={"kid": kid})


@pytest.fixture
async def issuer() -> AsyncIterator[Issuer]:
    provider = Issuer()

    async def discovery(_: web.Request) -> web.Response:
        return web.json_response({"issuer": provider.url, "jwks_uri": f"{provider.url}/keys"})

    async def keys(_: web.Request) -> web.Response:
        provider.jwks_requests += 1
        return web.json_response(provider.jwks())

    app = web.Application()
    app.router.add_get("/.well-known/openid-configuration", discovery)
    app.router.add_get("/keys", keys)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    provider.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield provider
    await runner.cleanup()


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def _started(issuer: Issuer, **settings: Any) -> OidcAuthenticator:
    config = OidcConfig.model_validate(
        {"issuer_url": issuer.url, "audience": "metricgate", **settings}
    )
    auth = OidcAuthenticator("oidc", config)
    await auth.start()
    await wait_until(lambda: bool(auth._keys))
    return auth


async def test_valid_tokens_give_principal_and_tenant(issuer: Issuer) -> None:
    auth = await _started(issuer, tenant_claim="org", groups_claim="groups")
    try:
        principal = await auth.authenticate(
            _bearer(issuer.token(org="team-a", groups=["x", "y"])), "a"
        )
        assert (principal.name, principal.tenant) == ("alice", "team-a")
        assert dict(principal.attributes) == {"subject": "alice", "groups": "x,y"}
        with pytest.raises(PermissionDenied, match="no 'org' claim"):
            await auth.authenticate(_bearer(issuer.token()), "a")
    finally:
        await auth.shutdown()


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"exp": int(time.time()) - 120}, "token expired"),
        ({"aud": "someone-else"}, "not meant for audience 'metricgate'"),
        ({"iss": "https://evil.example"}, "was not issued by"),
        ({"exp": None}, "lacks the 'exp' claim"),
        ({"nbf": int(time.time()) + 600}, "not valid yet"),
        ({"sub": None}, "lacks the 'sub' claim"),
    ],
)
async def test_claims_are_checked(issuer: Issuer, claims: dict[str, Any], message: str) -> None:
    auth = await _started(issuer)
    try:
        with pytest.raises(Unauthenticated, match=message):
            await auth.authenticate(_bearer(issuer.token(**claims)), "a")
    finally:
        await auth.shutdown()


async def test_clock_skew_is_tolerated(issuer: Issuer) -> None:
    auth = await _started(issuer, clock_skew="2m")
    try:
        token = issuer.token(exp=int(time.time()) - 60)
        assert (await auth.authenticate(_bearer(token), "a")).name == "alice"
    finally:
        await auth.shutdown()


async def test_forged_tokens_are_refused(issuer: Issuer) -> None:
    auth = await _started(issuer)
    try:
        good = issuer.token()
        header, _, signature = good.split(".")
        payload = issuer.token(sub="mallory").split(".")[1]
        with pytest.raises(Unauthenticated, match="signature is invalid"):
            await auth.authenticate(_bearer(f"{header}.{payload}.{signature}"), "a")
        unsigned = jwt.encode(
            {"iss": issuer.url, "aud": "metricgate", "sub": "x"}, None, algorithm="none"
        )
        with pytest.raises(Unauthenticated, match="algorithm 'none' is not accepted"):
            await auth.authenticate(_bearer(unsigned), "b")
        # HMAC with a guessable secret (or the public key as secret) is never accepted
        hmac = jwt.encode(
            {"iss": issuer.url, "aud": "metricgate", "sub": "x"}, "k" * 32, algorithm="HS256"
        )
        with pytest.raises(Unauthenticated, match="algorithm 'HS256' is not accepted"):
            await auth.authenticate(_bearer(hmac), "b")
        with pytest.raises(Unauthenticated, match="malformed token"):
            await auth.authenticate(_bearer("not-a-jwt"), "c")
    finally:
        await auth.shutdown()


async def test_key_rotation_refetches_once_per_interval(issuer: Issuer) -> None:
    auth = await _started(issuer, min_refetch_interval=0)
    try:
        issuer.keys["k2"] = ec.generate_private_key(ec.SECP256R1())
        token = issuer.token(kid="k2", algorithm="ES256")
        assert (await auth.authenticate(_bearer(token), "a")).name == "alice"
        fetches = issuer.jwks_requests
        # an unknown kid with a refetch cooldown does not reach the issuer again
        auth.config = auth.config.model_copy(update={"min_refetch_interval": 3600.0})
        other = jwt.encode(
            {"sub": "x"}, issuer.keys["k2"], algorithm="ES256", headers={"kid": "zz"}
        )
        with pytest.raises(Unauthenticated, match="unknown key"):
            await auth.authenticate(_bearer(other), "b")
        assert issuer.jwks_requests == fetches
    finally:
        await auth.shutdown()


async def test_unreachable_issuer_does_not_block_start() -> None:
    config = OidcConfig(issuer_url="http://127.0.0.1:9", audience="metricgate")
    auth = OidcAuthenticator("oidc", config)
    await auth.start()
    try:
        await wait_until(lambda: auth.key_fetches >= 1)
        token = jwt.encode({"sub": "x"}, rsa.generate_private_key(65537, 2048), algorithm="RS256")
        with pytest.raises(UnavailableError, match="not available yet"):
            await auth.authenticate(_bearer(token), "a")
    finally:
        await auth.shutdown()


async def test_public_keys_file(tmp_path: Path, issuer: Issuer) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(issuer.jwks()))
    config = OidcConfig(issuer_url=issuer.url, audience="metricgate", public_keys_file=str(jwks))
    auth = OidcAuthenticator("oidc", config)
    assert (await auth.authenticate(_bearer(issuer.token()), "a")).name == "alice"
    pem = tmp_path / "key.pem"
    pem.write_bytes(
        issuer.keys["k1"]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    auth = OidcAuthenticator("oidc", config.model_copy(update={"public_keys_file": str(pem)}))
    token = jwt.encode(
        {"iss": issuer.url, "aud": "metricgate", "sub": "bob", "exp": int(time.time()) + 60},
        issuer.keys["k1"],
        algorithm="RS256",
    )
    assert (await auth.authenticate(_bearer(token), "a")).name == "bob"
    assert issuer.jwks_requests == 0


def test_config_refuses_symmetric_algorithms_and_missing_audience() -> None:
    with pytest.raises(ValueError, match="audience is required"):
        OidcConfig(issuer_url="https://idp")
    with pytest.raises(ValueError, match="algorithm 'HS256' is not accepted"):
        OidcConfig(issuer_url="https://idp", audience="a", algorithms=["HS256"])
    assert OidcConfig(issuer_url="https://idp", ignore_audience=True).audience == ""
