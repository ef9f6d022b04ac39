"""`basicauth`: HTTP basic authentication against an htpasswd file (or inline lines), bcrypt only.

Only bcrypt entries (`$2a$`, `$2b$`, `$2y$`, as `htpasswd -B` writes them) are accepted: the
other htpasswd formats (`{SHA}`, `$apr1$`, crypt) are unsalted or fast enough to brute-force, so
such a line is refused with a message saying how to make a bcrypt one. A bcrypt check costs tens of
milliseconds of CPU (cost 10: ~70 ms), so it runs in a worker thread, at most
`max_concurrent_checks` at a time, and a verified `user:password` is cached like every credential.
An unknown user is checked against a dummy hash of the same cost, so response time does not tell
which user names exist.

Invariant: the file is re-read when it changes; a file that does not parse keeps the previous
users (and logs why), it never empties the table.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections.abc import Hashable
from typing import Any, Self

import bcrypt
from pydantic import Field, model_validator

from metricgate.config.types import ComponentConfig, Duration
from metricgate.config.watched_files import WatchedFiles
from metricgate.errors import ConfigError
from metricgate.extensions.authenticator import (
    Authenticator,
    AuthenticatorConfig,
    CredentialRefused,
    Headers,
    header_credential,
    reload_credentials,
)
from metricgate.extensions.principal import Principal

log = logging.getLogger(__name__)

_BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")


def parse_htpasswd(text: str, source: str) -> dict[str, bytes]:
    """`user:hash` lines -> {user: hash}; raises ValueError naming the line of a bad entry."""
    users: dict[str, bytes] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, hashed = line.partition(":")
        if not sep or not user or not hashed:
            raise ValueError(f"{source} line {number}: expected user:hash")
        if not hashed.startswith(_BCRYPT_PREFIXES):
            raise ValueError(
                f"{source} line {number} (user {user!r}): only bcrypt hashes ($2y$, $2b$, $2a$) "
                "are accepted; create one with `htpasswd -B`"
            )
        if user in users:
            raise ValueError(f"{source} line {number}: user {user!r} is listed twice")
        users[user] = hashed.encode()
    return users


class Htpasswd(ComponentConfig):
    """Where the users are: an htpasswd file, inline lines, or both (inline wins)."""

    file: str = ""
    inline: str = ""

    @model_validator(mode="after")
    def _some(self) -> Self:
        if not self.file and not self.inline:
            raise ValueError("expected file or inline")
        if self.inline:
            parse_htpasswd(self.inline, "inline")
        return self


class BasicAuthConfig(AuthenticatorConfig):
    """`basicauth`: `Authorization: Basic ...` checked against htpasswd bcrypt entries."""

    htpasswd: Htpasswd
    reload_interval: Duration = 10.0
    """How often the htpasswd file is checked for changes; 0 = read once."""
    max_concurrent_checks: int = Field(default=2, ge=1)
    """bcrypt checks running at once (each holds a CPU for tens of ms)."""


class BasicAuthenticator(Authenticator):
    """Verifies basic-auth user names and passwords against bcrypt hashes."""

    challenge = 'Basic realm="metricgate", charset="UTF-8"'

    def __init__(self, extension_id: str, config: BasicAuthConfig) -> None:
        super().__init__(extension_id, config)
        self.config: BasicAuthConfig = config
        self._inline = parse_htpasswd(config.htpasswd.inline, "inline")
        path = config.htpasswd.file
        self._files = WatchedFiles([path], config.reload_interval) if path else None
        self._users = dict(self._inline)
        if self._files is not None:
            try:
                content = self._files.read()[0].decode("utf-8")
                self._users = {**parse_htpasswd(content, path), **self._inline}
            except (OSError, ValueError) as exc:
                raise ConfigError(f"extensions.{extension_id}.htpasswd.file: {exc}") from None
        self._checks = asyncio.Semaphore(config.max_concurrent_checks)
        self._dummy: bytes | None = None

    def refresh(self) -> bool:
        path = self.config.htpasswd.file
        users = reload_credentials(
            self._files,
            lambda content: parse_htpasswd(content.decode("utf-8"), path),
            self.extension_id,
            "htpasswd file",
        )
        if users is None:
            return False
        self._users = {**users, **self._inline}
        log.info("%s: htpasswd file changed; %d users", self.extension_id, len(self._users))
        return True

    def credential(self, headers: Headers, peer_cert: bytes | None) -> Hashable | None:
        return header_credential(headers, "authorization", "basic")

    async def verify(self, credential: Any) -> tuple[Principal, float]:
        encoded = str(credential).partition(" ")[2].strip()
        try:
            user, sep, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise CredentialRefused("malformed basic credentials") from None
        if not sep or not user:
            raise CredentialRefused("malformed basic credentials")
        hashed = self._users.get(user)
        async with self._checks:
            ok = await asyncio.to_thread(self._check, password.encode(), hashed)
        if not ok or hashed is None:
            raise CredentialRefused("unknown user or wrong password", principal=user)
        return Principal(user, self.extension_id), float("inf")

    def _check(self, password: bytes, hashed: bytes | None) -> bool:
        if hashed is None:
            # Same cost as a real check, so a missing user is not faster to refuse.
            if self._dummy is None:
                rounds = self._rounds()
                self._dummy = bcrypt.hashpw(b"metricgate", bcrypt.gensalt(rounds))
            hashed = self._dummy
        try:
            return bool(bcrypt.checkpw(password, hashed))
        except ValueError:
            return False  # password over 72 bytes, or a corrupt hash

    def _rounds(self) -> int:
        for hashed in self._users.values():
            try:
                return min(max(int(hashed[4:6]), 4), 31)
            except ValueError:
                continue
        return 10
