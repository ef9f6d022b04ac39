"""The authenticator base: cache with TTL and bound, per-address failure limit, events."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import pytest

from metricgate.errors import RateLimitError, Unauthenticated
from metricgate.extensions import Authenticator, AuthenticatorConfig, AuthEvent, Principal
from metricgate.extensions.authenticator import CredentialRefused, Headers, header_credential


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


class KeyAuthenticator(Authenticator):
    """`X-Key: <name>:<secret>`; the secret must be `good`; counts verifications."""

    challenge = 'Key realm="test"'

    def __init__(self, config: AuthenticatorConfig, clock: Clock) -> None:
        super().__init__("keyauth", config, clock)
        self.verified = 0

    def credential(self, headers: Headers, peer_cert: bytes | None) -> Hashable | None:
        return headers.get("x-key")

    async def verify(self, credential: Any) -> tuple[Principal, float]:
        self.verified += 1
        name, _, secret = str(credential).partition(":")
        if secret != "good":
            raise CredentialRefused("bad key", principal=name)
        return Principal(name, self.extension_id), 100.0


async def test_cache_hits_skip_verification_until_the_ttl() -> None:
    clock = Clock()
    auth = KeyAuthenticator(AuthenticatorConfig(cache_ttl=30), clock)
    assert auth.cached({"x-key": "alice:good"}) is None
    principal = await auth.authenticate({"x-key": "alice:good"}, "10.0.0.1")
    assert principal == Principal("alice", "keyauth")
    for _ in range(5):
        assert await auth.authenticate({"x-key": "alice:good"}, "10.0.0.1") is principal
    assert auth.cached({"x-key": "alice:good"}) is principal
    assert auth.verified == 1
    clock.now += 31  # cache_ttl (30) is shorter than the credential's lifetime (100)
    assert auth.cached({"x-key": "alice:good"}) is None
    await auth.authenticate({"x-key": "alice:good"}, "10.0.0.1")
    assert auth.verified == 2


async def test_cache_is_bounded() -> None:
    auth = KeyAuthenticator(AuthenticatorConfig(cache_max_entries=3), Clock())
    for index in range(10):
        await auth.authenticate({"x-key": f"u{index}:good"}, "10.0.0.1")
    assert len(auth._cache) == 3


async def test_refusals_carry_the_challenge_and_never_the_secret() -> None:
    auth = KeyAuthenticator(AuthenticatorConfig(), Clock())
    events: list[AuthEvent] = []
    auth.on_event = events.append
    with pytest.raises(Unauthenticated) as missing:
        await auth.authenticate({}, "10.0.0.1")
    assert (str(missing.value), missing.value.challenge) == (
        "authentication required",
        auth.challenge,
    )
    assert (missing.value.http_status, missing.value.grpc_code) == (401, "UNAUTHENTICATED")
    with pytest.raises(Unauthenticated, match=r"^bad key$"):
        await auth.authenticate({"x-key": "bob:s3cret-value"}, "10.0.0.2")
    await auth.authenticate({"x-key": "bob:good"}, "10.0.0.2")
    assert [(e.kind, e.address, e.principal, e.reason) for e in events] == [
        ("auth_failure", "10.0.0.1", "", "no credentials"),
        ("auth_failure", "10.0.0.2", "bob", "bad key"),
        ("auth_success", "10.0.0.2", "bob", ""),
    ]
    assert "s3cret" not in repr(events)


async def test_failures_are_limited_per_address_but_cached_clients_keep_working() -> None:
    clock = Clock()
    config = AuthenticatorConfig(max_failed_attempts=3, failed_attempts_window=60)
    auth = KeyAuthenticator(config, clock)
    await auth.authenticate({"x-key": "alice:good"}, "192.0.2.7")
    for _ in range(3):
        with pytest.raises(Unauthenticated):
            await auth.authenticate({"x-key": "mallory:guess"}, "192.0.2.7")
    verified = auth.verified
    with pytest.raises(RateLimitError) as limited:
        await auth.authenticate({"x-key": "mallory:guess"}, "192.0.2.7")
    assert limited.value.retry_after == pytest.approx(20.0)
    assert auth.verified == verified  # refused before verifying anything
    # the valid, cached client behind the same address is still served; other addresses too
    assert (await auth.authenticate({"x-key": "alice:good"}, "192.0.2.7")).name == "alice"
    with pytest.raises(Unauthenticated):
        await auth.authenticate({"x-key": "eve:guess"}, "198.51.100.1")
    clock.now += 20
    with pytest.raises(Unauthenticated):
        await auth.authenticate({"x-key": "mallory:guess"}, "192.0.2.7")


def test_header_credential_wants_the_scheme() -> None:
    assert header_credential({"authorization": "Bearer abc"}, "authorization", "bearer")
    assert header_credential({"authorization": "bearer abc"}, "authorization", "bearer")
    assert header_credential({"authorization": "Basic abc"}, "authorization", "bearer") is None
    assert header_credential({"authorization": "Bearer "}, "authorization", "bearer") is None
    assert header_credential({}, "authorization", "bearer") is None
