"""`bearertokenauth`: inline and file tokens, revocation by file change, refusals."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from metricgate.errors import ConfigError, Unauthenticated
from metricgate.extensions import Principal
from metricgate.extensions.bearer import BearerTokenAuthConfig, BearerTokenAuthenticator


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def _write(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


async def test_inline_tokens_map_to_principals() -> None:
    config = BearerTokenAuthConfig.model_validate(
        {
            "token": "single",
            "tokens": ["bare", {"token": "t-a", "principal": "agent-a", "tenant": "team-a"}],
        }
    )
    auth = BearerTokenAuthenticator("bearertokenauth/ci", config)
    assert await auth.authenticate(_bearer("single"), "1.1.1.1") == Principal(
        "ci", auth.extension_id
    )
    assert (await auth.authenticate(_bearer("bare"), "1.1.1.1")).name == "ci"
    assert await auth.authenticate(_bearer("t-a"), "1.1.1.1") == Principal(
        "agent-a", "bearertokenauth/ci", "team-a"
    )
    with pytest.raises(Unauthenticated) as refused:
        await auth.authenticate(_bearer("t-b"), "1.1.1.1")
    assert str(refused.value) == "invalid bearer token"
    assert refused.value.challenge == 'Bearer realm="metricgate"'
    with pytest.raises(Unauthenticated, match="authentication required"):
        await auth.authenticate({"authorization": "Basic dDpi"}, "1.1.1.1")


async def test_custom_header_and_scheme() -> None:
    config = BearerTokenAuthConfig(header="X-Api-Key", scheme="Token", tokens=["k1"])
    auth = BearerTokenAuthenticator("bearertokenauth", config)
    assert (await auth.authenticate({"x-api-key": "Token k1"}, "a")).name == "bearertokenauth"
    with pytest.raises(Unauthenticated):
        await auth.authenticate({"authorization": "Bearer k1"}, "a")


async def test_tokens_file_is_reloaded_and_revocation_drops_the_cache(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.yaml"
    _write(
        tokens,
        "- {token: ' tok-a\n', principal: alice, tenant: team-a}\n"
        "- {token: tok-b, principal: bob}\n",
    )
    config = BearerTokenAuthConfig(tokens_file=str(tokens), reload_interval=0.001)
    auth = BearerTokenAuthenticator("bearertokenauth", config)
    assert (await auth.authenticate(_bearer("tok-a"), "a")).tenant == "team-a"
    assert (await auth.authenticate(_bearer("tok-b"), "a")).name == "bob"
    assert auth.cached(_bearer("tok-b")) is not None

    _write(tokens, "- {token: tok-a, principal: alice}\n- {token: tok-c, principal: carol}\n")
    auth._files.force_check()  # type: ignore[union-attr]
    with pytest.raises(Unauthenticated):
        await auth.authenticate(_bearer("tok-b"), "a")  # revoked although it was cached
    assert (await auth.authenticate(_bearer("tok-c"), "a")).name == "carol"

    _write(tokens, "- {token: tok-d}\n")  # broken: keeps the previous tokens
    auth._files.force_check()  # type: ignore[union-attr]
    assert (await auth.authenticate(_bearer("tok-c"), "a")).name == "carol"


async def test_single_token_file_like_the_collector(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("abc123\n")
    auth = BearerTokenAuthenticator("bearertokenauth/x", BearerTokenAuthConfig(filename=str(path)))
    assert (await auth.authenticate(_bearer("abc123"), "a")).name == "x"


def test_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="at least one of token, tokens or tokens_file"):
        BearerTokenAuthConfig()
    with pytest.raises(ValidationError, match=r"tokens\[1\]: expected a non-empty token"):
        BearerTokenAuthConfig(tokens=["a", " "])
    with pytest.raises(ConfigError, match=r"extensions\.bearertokenauth\.tokens_file: .*missing"):
        BearerTokenAuthenticator(
            "bearertokenauth", BearerTokenAuthConfig(tokens_file=str(tmp_path / "missing"))
        )
    bad = tmp_path / "bad.yaml"
    bad.write_text("- {token: a, principal: x}\n- {token: a, principal: y}\n")
    with pytest.raises(ConfigError, match="one token is given for both 'x' and 'y'"):
        BearerTokenAuthenticator("bearertokenauth", BearerTokenAuthConfig(tokens_file=str(bad)))
    bad.write_text("{a: b}\n")
    with pytest.raises(ConfigError, match="expected a list of"):
        BearerTokenAuthenticator("bearertokenauth", BearerTokenAuthConfig(tokens_file=str(bad)))
