"""`basicauth`: bcrypt htpasswd entries, refusals, reload, and the bcrypt cost paid once."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import bcrypt
import pytest
from pydantic import ValidationError

from metricgate.errors import ConfigError, Unauthenticated
from metricgate.extensions.basic import BasicAuthConfig, BasicAuthenticator


def _entry(user: str, password: str, prefix: str = "$2y$") -> str:
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()
    return f"{user}:{prefix}{hashed[4:]}"


def _basic(user: str, password: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def test_bcrypt_users_from_file_and_inline(tmp_path: Path) -> None:
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(
        f"# agents\n{_entry('alice', 'wonder')}\n{_entry('bob', 'b:uilder', '$2b$')}\n"
    )
    config = BasicAuthConfig.model_validate(
        {"htpasswd": {"file": str(htpasswd), "inline": _entry("carol", "c")}}
    )
    auth = BasicAuthenticator("basicauth/agents", config)
    assert (await auth.authenticate(_basic("alice", "wonder"), "a")).name == "alice"
    assert (await auth.authenticate(_basic("bob", "b:uilder"), "a")).name == "bob"
    assert (await auth.authenticate(_basic("carol", "c"), "a")).name == "carol"
    assert auth.cached(_basic("alice", "wonder")) is not None  # the next request costs no bcrypt
    for headers in (_basic("alice", "wrong"), _basic("nobody", "x"), _basic("alice", "x" * 100)):
        with pytest.raises(Unauthenticated) as refused:
            await auth.authenticate(headers, "a")
        assert str(refused.value) == "unknown user or wrong password"
        assert refused.value.challenge.startswith("Basic realm=")
    with pytest.raises(Unauthenticated, match="malformed basic credentials"):
        await auth.authenticate({"authorization": "Basic !!!"}, "a")


async def test_reload_changes_passwords(tmp_path: Path) -> None:
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(_entry("alice", "one") + "\n")
    config = BasicAuthConfig(htpasswd={"file": str(htpasswd)}, reload_interval=0.001)  # type: ignore[arg-type]
    auth = BasicAuthenticator("basicauth", config)
    await auth.authenticate(_basic("alice", "one"), "a")
    tmp = tmp_path / "new"
    tmp.write_text(_entry("alice", "two") + "\n")
    os.replace(tmp, htpasswd)
    auth._files.force_check()  # type: ignore[union-attr]
    with pytest.raises(Unauthenticated):
        await auth.authenticate(_basic("alice", "one"), "a")
    assert (await auth.authenticate(_basic("alice", "two"), "a")).name == "alice"


def test_non_bcrypt_entries_are_refused_with_a_way_out(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"only bcrypt hashes .*htpasswd -B"):
        BasicAuthConfig.model_validate(
            {"htpasswd": {"inline": "bob:{SHA}fEqNCco3Yq9h5ZUglD3CZJT4lBs="}}
        )
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("carol:$apr1$abc$def\n")
    with pytest.raises(
        ConfigError, match=r"htpasswd\.file: .*line 1 \(user 'carol'\): only bcrypt"
    ):
        BasicAuthenticator("basicauth", BasicAuthConfig(htpasswd={"file": str(htpasswd)}))  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="expected file or inline"):
        BasicAuthConfig.model_validate({"htpasswd": {}})
