"""`oidc`: JWT bearer tokens checked against an OpenID Connect issuer's signing keys.

Keys come from the issuer (its discovery document's `jwks_uri`, or `jwks_url`), fetched in the
background and refreshed every `jwks_refresh_interval`, or from `public_keys_file` (a JWKS JSON
document or one PEM public key), re-read when it changes. A token is accepted when its signature
verifies with the key its `kid` names, under an algorithm from the fixed `algorithms` list (never
the token's own choice: `none` and HMAC are refused), its `iss` is `issuer_url`, its `aud` holds
`audience`, and `exp`/`nbf`/`iat` hold within `clock_skew`. The principal is the
`username_claim`; the tenant the `tenant_claim` when set.

An unreachable issuer does not stop the gateway from starting: tokens are answered with 503
until the keys arrive. A token naming an unknown `kid` triggers one refetch at most every
`min_refetch_interval`, so random key ids cannot make us hammer the issuer.

Invariant: the verification cache never outlives a token's `exp` (plus `clock_skew`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import time
from collections.abc import Hashable
from typing import Any, Self

import aiohttp
import jwt
from pydantic import model_validator

from metricgate.config.types import Duration
from metricgate.config.watched_files import WatchedFiles
from metricgate.errors import ConfigError, PermissionDenied, UnavailableError
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

ASYMMETRIC_ALGORITHMS = (
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
)  # fmt: skip
_MAX_DOCUMENT = 1 << 20


class OidcConfig(AuthenticatorConfig):
    """`oidc`: which issuer, audience and claims make a JWT acceptable."""

    issuer_url: str
    """The `iss` every token must carry; discovery reads `<issuer_url>/.well-known/...`."""
    audience: str = ""
    """A value the token's `aud` must hold; required unless `ignore_audience`."""
    ignore_audience: bool = False
    jwks_url: str = ""
    """Where the signing keys are; empty: the issuer's discovery document says."""
    public_keys_file: str = ""
    """Signing keys from a file (JWKS JSON or a PEM public key) instead of the issuer."""
    issuer_ca_path: str = ""
    """CA bundle (PEM) for the issuer's HTTPS certificate; empty: the system's."""
    username_claim: str = "sub"
    tenant_claim: str = ""
    """Claim naming the principal's tenant; empty: the tenants section decides."""
    groups_claim: str = ""
    """Claim listing groups, kept as a principal attribute for audit."""
    algorithms: list[str] = list(ASYMMETRIC_ALGORITHMS)
    clock_skew: Duration = 60.0
    jwks_refresh_interval: Duration = 300.0
    min_refetch_interval: Duration = 30.0
    reload_interval: Duration = 10.0
    """How often `public_keys_file` is checked for changes."""

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if not self.audience and not self.ignore_audience:
            raise ValueError("audience is required (or set ignore_audience: true)")
        for algorithm in self.algorithms:
            if algorithm not in ASYMMETRIC_ALGORITHMS:
                raise ValueError(
                    f"algorithm {algorithm!r} is not accepted (expected some of "
                    f"{', '.join(ASYMMETRIC_ALGORITHMS)})"
                )
        if not self.algorithms:
            raise ValueError("algorithms must list at least one algorithm")
        return self


def parse_keys(content: bytes) -> dict[str | None, jwt.PyJWK]:
    """A JWKS document, one JWK, or one PEM public key -> keys by `kid` (None: no kid)."""
    text = content.decode("utf-8", errors="replace").strip()
    if text.startswith("-----BEGIN"):
        from cryptography.hazmat.primitives import serialization

        try:
            public = serialization.load_pem_public_key(text.encode())
        except ValueError:
            raise ValueError("expected a PEM public key") from None
        return {None: jwt.PyJWK(_jwk_of(public))}
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        raise ValueError("expected a JWKS JSON document or a PEM public key") from None
    entries = document.get("keys") if isinstance(document, dict) else None
    if entries is None:
        entries = [document]
    keys: dict[str | None, jwt.PyJWK] = {}
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        try:
            keys[entry.get("kid")] = jwt.PyJWK(entry)
        except jwt.PyJWTError:
            continue  # a key type or curve we do not verify with; other keys still count
    if not keys:
        raise ValueError("no usable signing key found")
    return keys


def _jwk_of(public: Any) -> dict[str, Any]:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    if isinstance(public, ec.EllipticCurvePublicKey):
        return json.loads(jwt.algorithms.ECAlgorithm.to_jwk(public))  # type: ignore[no-any-return]
    if isinstance(public, ed25519.Ed25519PublicKey):
        return json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(public))  # type: ignore[no-any-return]
    return json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(public))  # type: ignore[no-any-return]


class OidcAuthenticator(Authenticator):
    """Verifies JWTs signed by the issuer's keys (see module docstring)."""

    challenge = 'Bearer realm="metricgate"'

    def __init__(self, extension_id: str, config: OidcConfig) -> None:
        super().__init__(extension_id, config)
        self.config: OidcConfig = config
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._files: WatchedFiles | None = None
        if config.public_keys_file:
            self._files = WatchedFiles([config.public_keys_file], config.reload_interval)
            try:
                self._keys = parse_keys(self._files.read()[0])
            except (OSError, ValueError) as exc:
                raise ConfigError(f"extensions.{extension_id}.public_keys_file: {exc}") from None
        self._task: asyncio.Task[None] | None = None
        self._fetch: asyncio.Task[bool] | None = None
        self._last_fetch = -float("inf")
        self.key_fetches = 0

    # --- keys --------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._files is None and self._task is None:
            self._task = asyncio.create_task(self._refresh_loop(), name=f"{self.extension_id} keys")

    async def shutdown(self) -> None:
        for task in (self._task, self._fetch):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._task = self._fetch = None

    async def _refresh_loop(self) -> None:
        backoff = 1.0
        while True:
            ok = await self._refetch()
            if ok:
                backoff = 1.0
                await asyncio.sleep(self.config.jwks_refresh_interval)
            else:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 60.0)

    def _refetch(self) -> asyncio.Task[bool]:
        """Fetch the keys once; concurrent callers share one fetch."""
        if self._fetch is None or self._fetch.done():
            self._last_fetch = time.monotonic()
            self._fetch = asyncio.create_task(self._fetch_keys())
        return self._fetch

    async def _fetch_keys(self) -> bool:
        self.key_fetches += 1
        context = ssl.create_default_context(cafile=self.config.issuer_ca_path or None)
        timeout = aiohttp.ClientTimeout(total=10)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session:
                url = self.config.jwks_url
                if not url:
                    discovery = self.config.issuer_url.rstrip("/")
                    document = await _get_json(
                        session, f"{discovery}/.well-known/openid-configuration", context
                    )
                    url = document.get("jwks_uri", "") if isinstance(document, dict) else ""
                    if not isinstance(url, str) or not url:
                        raise ValueError("the discovery document has no jwks_uri")
                body = await _get_bytes(session, url, context)
            keys = parse_keys(body)
        except (aiohttp.ClientError, TimeoutError, ValueError, OSError) as exc:
            log.warning("%s: cannot fetch the issuer's keys: %s", self.extension_id, exc)
            return False
        if set(keys) != set(self._keys):
            self.forget()  # a key was withdrawn: verify cached tokens again
        self._keys = keys
        return True

    def refresh(self) -> bool:
        keys = reload_credentials(self._files, parse_keys, self.extension_id, "public_keys_file")
        if keys is None:
            return False
        self._keys = keys
        return True

    async def _key_for(self, kid: str | None) -> jwt.PyJWK:
        key = self._keys.get(kid)
        if key is None and kid is None and len(self._keys) == 1:
            key = next(iter(self._keys.values()))
        if key is not None:
            return key
        if self._files is None and time.monotonic() - self._last_fetch >= (
            self.config.min_refetch_interval
        ):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._refetch()), 10)
            key = self._keys.get(kid)
            if key is not None:
                return key
        if not self._keys:
            raise UnavailableError("the identity provider's keys are not available yet", 5.0)
        raise CredentialRefused("token is signed by an unknown key")

    # --- tokens ------------------------------------------------------------------------------

    def credential(self, headers: Headers, peer_cert: bytes | None) -> Hashable | None:
        return header_credential(headers, "authorization", "bearer")

    async def verify(self, credential: Any) -> tuple[Principal, float]:
        config = self.config
        token = str(credential).partition(" ")[2].strip()
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise CredentialRefused("malformed token") from None
        algorithm = header.get("alg")
        if algorithm not in config.algorithms:
            raise CredentialRefused(f"token algorithm {str(algorithm)[:20]!r} is not accepted")
        kid = header.get("kid")
        key = await self._key_for(kid if isinstance(kid, str) else None)
        required = ["exp", "iss"] + ([] if config.ignore_audience else ["aud"])
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[algorithm],
                audience=None if config.ignore_audience else config.audience,
                issuer=config.issuer_url,
                leeway=config.clock_skew,
                options={"require": required, "verify_aud": not config.ignore_audience},
            )
        except jwt.ExpiredSignatureError:
            raise CredentialRefused("token expired") from None
        except jwt.ImmatureSignatureError:
            raise CredentialRefused("token is not valid yet") from None
        except jwt.InvalidAudienceError:
            raise CredentialRefused(
                f"token is not meant for audience {config.audience!r}"
            ) from None
        except jwt.InvalidIssuerError:
            raise CredentialRefused(f"token was not issued by {config.issuer_url}") from None
        except jwt.MissingRequiredClaimError as exc:
            raise CredentialRefused(f"token lacks the {exc.claim!r} claim") from None
        except jwt.InvalidSignatureError:
            raise CredentialRefused("token signature is invalid") from None
        except jwt.PyJWTError:
            raise CredentialRefused("invalid token") from None
        return self._principal(claims), float(claims["exp"]) + config.clock_skew - time.time()

    def _principal(self, claims: dict[str, Any]) -> Principal:
        config = self.config
        name = claims.get(config.username_claim)
        if not isinstance(name, str) or not name:
            raise CredentialRefused(f"token lacks the {config.username_claim!r} claim")
        tenant = ""
        if config.tenant_claim:
            value = claims.get(config.tenant_claim)
            if isinstance(value, list) and len(value) == 1:
                value = value[0]
            if not isinstance(value, str) or not value:
                raise PermissionDenied(
                    f"token has no {config.tenant_claim!r} claim naming one tenant"
                )
            tenant = value
        attributes: list[tuple[str, str]] = [("subject", str(claims.get("sub", "")))]
        groups = claims.get(config.groups_claim) if config.groups_claim else None
        if isinstance(groups, list):
            attributes.append(("groups", ",".join(str(g) for g in groups)))
        return Principal(name, self.extension_id, tenant, tuple(attributes))


async def _get_bytes(session: aiohttp.ClientSession, url: str, context: ssl.SSLContext) -> bytes:
    async with session.get(url, ssl=context) as response:
        if response.status != 200:
            raise ValueError(f"{url} answered HTTP {response.status}")
        body = await response.content.read(_MAX_DOCUMENT + 1)
        if len(body) > _MAX_DOCUMENT:
            raise ValueError(f"{url} sent more than {_MAX_DOCUMENT} bytes")
        return body


async def _get_json(session: aiohttp.ClientSession, url: str, context: ssl.SSLContext) -> Any:
    try:
        return json.loads(await _get_bytes(session, url, context))
    except json.JSONDecodeError:
        raise ValueError(f"{url} did not send JSON") from None
