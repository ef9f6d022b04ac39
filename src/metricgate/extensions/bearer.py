"""`bearertokenauth`: static bearer tokens, inline or in a file re-read on change.

Each token maps to a principal (and optionally a tenant). Tokens are kept and looked up as
SHA-256 digests, so the lookup's timing tells nothing about how much of a guess was right, and a
memory dump of the table shows no token. The tokens file is YAML: a list of
`{token, principal, tenant}` entries, or one bare token (the Collector's `filename`), surrounding
whitespace ignored.

Invariant: a token removed from the file stops working at the first request after the next
check (`reload_interval`): the change drops every cached verification.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Hashable
from typing import Any, Self

import yaml
from pydantic import model_validator

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


class TokenEntry(ComponentConfig):
    """One accepted token and who presents it."""

    token: str
    principal: str
    tenant: str = ""


class BearerTokenAuthConfig(AuthenticatorConfig):
    """`bearertokenauth`: `Authorization: Bearer <token>` against a list of known tokens."""

    scheme: str = "Bearer"
    header: str = "Authorization"
    token: str = ""
    """One token (the Collector's key); its principal is `principal`."""
    tokens: list[str | TokenEntry] = []
    """Tokens: bare strings (principal `principal`) or `{token, principal, tenant}`."""
    tokens_file: str = ""
    """A YAML file of `{token, principal, tenant}` entries, or holding one bare token."""
    filename: str = ""
    """The Collector's name for a file holding one token; same as `tokens_file`."""
    principal: str = ""
    """Principal of tokens given without one; empty: the extension's name (`ci` in
    `bearertokenauth/ci`)."""
    reload_interval: Duration = 10.0
    """How often the tokens file is checked for changes; 0 = read once."""

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if self.tokens_file and self.filename:
            raise ValueError("set tokens_file or filename, not both")
        if not (self.token or self.tokens or self.tokens_file or self.filename):
            raise ValueError("expected at least one of token, tokens or tokens_file")
        for index, entry in enumerate(self.tokens):
            if not (entry if isinstance(entry, str) else entry.token).strip():
                raise ValueError(f"tokens[{index}]: expected a non-empty token")
        return self


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class BearerTokenAuthenticator(Authenticator):
    """Accepts the configured tokens; each request's token is looked up by its digest."""

    def __init__(self, extension_id: str, config: BearerTokenAuthConfig) -> None:
        super().__init__(extension_id, config)
        self.config: BearerTokenAuthConfig = config
        self._header = config.header.lower()
        self._scheme = config.scheme.lower()
        self.challenge = f'{config.scheme} realm="metricgate"'
        self._default_principal = config.principal or extension_id.rpartition("/")[2]
        inline: list[tuple[str, str, str]] = []
        if config.token:
            inline.append((config.token, self._default_principal, ""))
        for entry in config.tokens:
            if isinstance(entry, str):
                inline.append((entry, self._default_principal, ""))
            else:
                inline.append((entry.token, entry.principal, entry.tenant))
        self._inline = inline
        path = config.tokens_file or config.filename
        self._files = WatchedFiles([path], config.reload_interval) if path else None
        self._table: dict[bytes, Principal] = {}
        try:
            entries = self._parse(self._files.read()[0]) if self._files is not None else []
            self._table = self._build(entries)
        except (OSError, ValueError) as exc:
            key = "tokens_file" if self._files is not None else "tokens"
            raise ConfigError(f"extensions.{extension_id}.{key}: {exc}") from None

    def _parse(self, content: bytes) -> list[tuple[str, str, str]]:
        try:
            data: Any = yaml.safe_load(content.decode("utf-8"))
        except (UnicodeDecodeError, yaml.YAMLError):
            raise ValueError("expected YAML (a list of {token, principal, tenant})") from None
        if isinstance(data, str | int) and str(data).strip():
            return [(str(data).strip(), self._default_principal, "")]
        if not isinstance(data, list):
            raise ValueError("expected a list of {token, principal, tenant} or one bare token")
        entries: list[tuple[str, str, str]] = []
        for index, item in enumerate(data):
            try:
                entry = TokenEntry.model_validate(item)
            except ValueError:
                raise ValueError(
                    f"entry {index}: expected {{token, principal, tenant}} with non-empty "
                    "token and principal"
                ) from None
            if not entry.token.strip() or not entry.principal:
                raise ValueError(f"entry {index}: token and principal must not be empty")
            entries.append((entry.token.strip(), entry.principal, entry.tenant))
        return entries

    def _build(self, file_entries: list[tuple[str, str, str]]) -> dict[bytes, Principal]:
        table: dict[bytes, Principal] = {}
        for token, principal, tenant in [*self._inline, *file_entries]:
            digest = _digest(token.strip())
            if digest in table and table[digest].name != principal:
                raise ValueError(
                    f"one token is given for both {table[digest].name!r} and {principal!r}"
                )
            table[digest] = Principal(principal, self.extension_id, tenant)
        return table

    def refresh(self) -> bool:
        table = reload_credentials(
            self._files,
            lambda content: self._build(self._parse(content)),
            self.extension_id,
            "tokens file",
        )
        if table is None:
            return False
        self._table = table
        log.info("%s: tokens file changed; %d tokens", self.extension_id, len(table))
        return True

    def credential(self, headers: Headers, peer_cert: bytes | None) -> Hashable | None:
        return header_credential(headers, self._header, self._scheme)

    async def verify(self, credential: Any) -> tuple[Principal, float]:
        token = str(credential).partition(" ")[2].strip()
        principal = self._table.get(_digest(token))
        if principal is None:
            raise CredentialRefused("invalid bearer token")
        return principal, float("inf")
