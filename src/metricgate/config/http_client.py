"""Prometheus' `http_client_config` keys: how a scrape (or an HTTP/Kubernetes discovery) dials out.

Key names and rules are Prometheus': `basic_auth`, `authorization`, `bearer_token[_file]`,
`tls_config`, `follow_redirects`, `enable_http2`; at most one of the three credentials. `proxy_url`
and `oauth2` are refused with a message saying so, rather than silently ignored. Secrets given as
files are read when a request is made, so a rotated file takes effect without a reload.

Invariant: building the model never reads a file; `authorization()` and `ssl_context()` do.
"""

from __future__ import annotations

import base64
import ssl
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import model_validator

from metricgate.config.types import ComponentConfig


class BasicAuth(ComponentConfig):
    """`basic_auth`: user name and a password given inline or in a file."""

    username: str = ""
    username_file: str = ""
    password: str = ""
    password_file: str = ""

    @model_validator(mode="after")
    def _one_each(self) -> Self:
        if self.username and self.username_file:
            raise ValueError("at most one of username and username_file may be set")
        if self.password and self.password_file:
            raise ValueError("at most one of password and password_file may be set")
        return self


class Authorization(ComponentConfig):
    """`authorization`: an `Authorization: <type> <credentials>` header."""

    type: str = "Bearer"
    credentials: str = ""
    credentials_file: str = ""

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if self.credentials and self.credentials_file:
            raise ValueError("at most one of credentials and credentials_file may be set")
        if self.type.strip().lower() == "basic":
            raise ValueError("authorization type Basic is not allowed, use basic_auth")
        return self


class TlsConfig(ComponentConfig):
    """`tls_config`: CA, client certificate, server name and verification of a TLS connection."""

    ca: str = ""
    ca_file: str = ""
    cert: str = ""
    cert_file: str = ""
    key: str = ""
    key_file: str = ""
    server_name: str = ""
    insecure_skip_verify: bool = False
    min_version: Literal["", "TLS10", "TLS11", "TLS12", "TLS13"] = ""

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        for inline, path in (("ca", "ca_file"), ("cert", "cert_file"), ("key", "key_file")):
            if getattr(self, inline) and getattr(self, path):
                raise ValueError(f"at most one of {inline} and {path} may be set")
        has_cert = bool(self.cert or self.cert_file)
        has_key = bool(self.key or self.key_file)
        if has_cert != has_key:
            raise ValueError("a client certificate and its key must be given together")
        return self

    def ssl_context(self) -> ssl.SSLContext:
        """The client context these settings describe (files are read now)."""
        context = ssl.create_default_context(cafile=self.ca_file or None, cadata=self.ca or None)
        if self.min_version:
            context.minimum_version = _TLS_VERSIONS[self.min_version]
        if self.cert_file:
            context.load_cert_chain(self.cert_file, self.key_file)
        elif self.cert:
            _load_inline_chain(context, self.cert, self.key)
        if self.insecure_skip_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


_TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}


def _load_inline_chain(context: ssl.SSLContext, cert: str, key: str) -> None:
    # ssl only loads chains from files: write both to a private temporary directory.
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        cert_path = Path(directory, "cert.pem")
        key_path = Path(directory, "key.pem")
        cert_path.write_text(cert)
        key_path.write_text(key)
        key_path.chmod(0o600)
        context.load_cert_chain(str(cert_path), str(key_path))


class HttpClientConfig(ComponentConfig):
    """The HTTP client keys Prometheus accepts beside a scrape or an HTTP-based discovery."""

    basic_auth: BasicAuth | None = None
    authorization: Authorization | None = None
    bearer_token: str = ""
    bearer_token_file: str = ""
    tls_config: TlsConfig = TlsConfig()
    follow_redirects: bool = True
    enable_http2: bool = True
    proxy_url: str = ""
    oauth2: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _supported(self) -> Self:
        if self.proxy_url:
            raise ValueError(
                "proxy_url is not supported by metricgate; reach the targets directly "
                "(or put the proxy in the environment of a sidecar)"
            )
        if self.oauth2 is not None:
            raise ValueError("oauth2 is not supported by metricgate; use authorization instead")
        if self.bearer_token and self.bearer_token_file:
            raise ValueError("at most one of bearer_token and bearer_token_file may be set")
        credentials = sum(
            (
                self.basic_auth is not None,
                self.authorization is not None,
                bool(self.bearer_token or self.bearer_token_file),
            )
        )
        if credentials > 1:
            raise ValueError(
                "at most one of basic_auth, authorization and bearer_token[_file] may be set"
            )
        return self

    def authorization_header(self) -> str | None:
        """The `Authorization` header value for the next request (credential files read now)."""
        if self.basic_auth is not None:
            auth = self.basic_auth
            user = _read(auth.username_file) if auth.username_file else auth.username
            password = _read(auth.password_file) if auth.password_file else auth.password
            token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
            return f"Basic {token}"
        if self.authorization is not None:
            authz = self.authorization
            secret = _read(authz.credentials_file) if authz.credentials_file else authz.credentials
            return f"{authz.type} {secret}"
        if self.bearer_token_file:
            return f"Bearer {_read(self.bearer_token_file)}"
        if self.bearer_token:
            return f"Bearer {self.bearer_token}"
        return None


def _read(path: str) -> str:
    return Path(path).read_text().strip()
