"""The authenticator contract: credentials in, a `Principal` out, the same for HTTP and gRPC.

A listener calls `await authenticator.authenticate(headers, peer, peer_cert)` once per request,
before it reads the body. `headers` is a case-insensitive mapping (aiohttp's) or one with
lower-case keys (gRPC metadata); `peer` is the client address; `peer_cert` the client
certificate (DER) when the connection is mutual TLS. It returns a `Principal` or raises:

- `Unauthenticated` (HTTP 401 + `WWW-Authenticate: <challenge>`, gRPC UNAUTHENTICATED): missing,
  malformed, unknown or expired credentials;
- `PermissionDenied` (403, PERMISSION_DENIED): valid credentials that lack something required
  (a JWT without the tenant claim);
- `RateLimitError` (429 + Retry-After, RESOURCE_EXHAUSTED): this address failed too often.

Each type implements `credential()` (pick the credential out of the request, cheaply) and
`verify()` (the expensive check). Verified credentials are cached, bounded and with a TTL, keyed
by the credential itself, so a steady client costs one header lookup, one clock read and one dict
lookup. Failures are counted per address in a token bucket; an address whose bucket is empty is
refused before anything is verified (cache hits are still served, so a valid client behind the
same NAT keeps working).

Invariant: no credential ever reaches a log, an exception message, an audit event or a
`Principal`; refusal messages name what is wrong, never the secret.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Mapping
from typing import Any, TypeVar

from pydantic import Field

from metricgate.config.types import ComponentConfig, Duration
from metricgate.config.watched_files import WatchedFiles
from metricgate.errors import PermissionDenied, RateLimitError, Unauthenticated
from metricgate.extensions.principal import AuthEvent, Principal
from metricgate.extensions.ratelimit import KeyedBuckets

log = logging.getLogger(__name__)

_T = TypeVar("_T")

Headers = Mapping[str, str]
"""Request headers: case-insensitive, or with lower-case names."""

EventSink = Callable[[AuthEvent], None]


class AuthenticatorConfig(ComponentConfig):
    """Settings every authenticator has: its verification cache and failure limit."""

    cache_ttl: Duration = 300.0
    """How long a verified credential is trusted without checking it again (never past expiry)."""
    cache_max_entries: int = Field(default=10_000, ge=1)
    max_failed_attempts: int = Field(default=10, ge=1)
    """Failures one client address may make per `failed_attempts_window` before getting 429."""
    failed_attempts_window: Duration = 60.0


class CredentialRefused(Exception):
    """Raised by `verify()`: the credential is wrong. `message` goes to the client as is."""

    def __init__(self, message: str, principal: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.principal = principal
        """The claimed identity when known and not secret (a basic-auth user name), for audit."""


class Extension(ABC):  # noqa: B024 - lifecycle hooks are optional
    """Base of service extensions: an id and a lifecycle, like components."""

    def __init__(self, extension_id: str) -> None:
        self.extension_id = extension_id

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Start background work (key refreshes). Must return promptly."""

    async def shutdown(self) -> None:  # noqa: B027 - optional hook
        """Stop background work. Idempotent; safe if `start` never ran."""


class Authenticator(Extension):
    """Base of every authenticator: caching, failure limiting and events (see module docstring)."""

    challenge = ""
    """The `WWW-Authenticate` value of this type's 401 answers."""
    requires_client_certificate = False
    """True when the listener must use mutual TLS (`tls.client_ca_file`) for this to work."""

    def __init__(
        self,
        extension_id: str,
        config: AuthenticatorConfig,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(extension_id)
        self.config = config
        self._clock = clock
        self._cache: dict[Hashable, tuple[Principal, float]] = {}
        self._failures = KeyedBuckets(
            config.max_failed_attempts / max(config.failed_attempts_window, 1e-3),
            config.max_failed_attempts,
            clock=clock,
        )
        self.on_event: EventSink | None = None
        """Where auth events go (the audit log); set by whoever wires the extension in."""

    @abstractmethod
    def credential(self, headers: Headers, peer_cert: bytes | None) -> Hashable | None:
        """The request's credential (the cache key), or None when it carries none."""

    @abstractmethod
    async def verify(self, credential: Any) -> tuple[Principal, float]:
        """Check a credential: its principal and how long (seconds) it stays valid.

        Raises `CredentialRefused` (becomes 401) or `PermissionDenied` (403).
        """

    def refresh(self) -> bool:
        """Re-read changed credential files; True when they changed (the cache is then dropped).

        Called on every request, so it must cost a clock read when nothing is due.
        """
        return False

    def cached(self, headers: Headers, peer_cert: bytes | None = None) -> Principal | None:
        """The principal of an already verified, unexpired credential; no I/O, no verification."""
        if self.refresh():
            self._cache.clear()
        credential = self.credential(headers, peer_cert)
        return None if credential is None else self._from_cache(credential)

    def _from_cache(self, credential: Hashable) -> Principal | None:
        """The principal of `credential` when it was verified and has not expired."""
        entry = self._cache.get(credential)
        if entry is not None:
            if entry[1] > self._clock():
                return entry[0]
            del self._cache[credential]
        return None

    async def authenticate(
        self, headers: Headers, peer: str, peer_cert: bytes | None = None
    ) -> Principal:
        """The request's principal, or a refusal (see module docstring)."""
        if self.refresh():
            self._cache.clear()
        credential = self.credential(headers, peer_cert)
        if credential is None:
            self._emit("auth_failure", peer, "", "no credentials")
            raise Unauthenticated("authentication required", self.challenge)
        found = self._from_cache(credential)
        if found is not None:
            return found
        wait = self._failures.wait_time(peer)
        if wait > 0:
            self._emit("auth_failure", peer, "", "too many failed attempts")
            raise RateLimitError(
                f"too many failed authentication attempts from this address; retry in {wait:.0f} s",
                retry_after=wait,
            )
        try:
            principal, lifetime = await self.verify(credential)
        except CredentialRefused as exc:
            self._failures.spend(peer)
            self._emit("auth_failure", peer, exc.principal, exc.message)
            raise Unauthenticated(exc.message, self.challenge) from None
        except PermissionDenied as exc:
            self._emit("auth_failure", peer, "", str(exc))
            raise
        ttl = min(lifetime, self.config.cache_ttl)
        if ttl > 0:
            if len(self._cache) >= self.config.cache_max_entries:
                del self._cache[next(iter(self._cache))]
            self._cache[credential] = (principal, self._clock() + ttl)
        self._emit("auth_success", peer, principal.name, "")
        return principal

    def forget(self) -> None:
        """Drop every cached verification (credentials were revoked)."""
        self._cache.clear()

    def _emit(self, kind: str, peer: str, principal: str, reason: str) -> None:
        if self.on_event is not None:
            self.on_event(AuthEvent(kind, self.extension_id, peer, principal, reason))


def header_credential(headers: Headers, name: str, scheme: str) -> str | None:
    """The value of header `name` (lower case) when it reads `<scheme> <something>`."""
    value = headers.get(name)
    if not value:
        return None
    found, _, rest = value.partition(" ")
    if found.lower() != scheme or not rest.strip():
        return None
    return value


def reload_credentials(
    files: WatchedFiles | None, parse: Callable[[bytes], _T], extension_id: str, what: str
) -> _T | None:
    """`parse` of a credential file's new contents when it changed (see `WatchedFiles.poll`);
    None when there is no file, it did not change, or it cannot be read or parsed (logged as an
    error: the caller keeps the credentials it has)."""
    if files is None:
        return None
    try:
        contents = files.poll()
        if contents is None:
            return None
        return parse(contents[0])
    except (OSError, ValueError) as exc:
        log.error(
            "%s: the changed %s cannot be used (%s); keeping the previous one",
            extension_id,
            what,
            exc,
        )
        return None
