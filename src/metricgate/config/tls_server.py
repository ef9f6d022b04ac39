"""`tls` on a listener: the Collector's server `configtls` keys and the live certificate they name.

`ServerTls` is the config model (plain data, no file read at validation). `ServerCertificates` is
what a listener holds at run time: it reads the certificate, key and client CAs, builds an
`ssl.SSLContext` for asyncio/aiohttp servers and credentials for grpcio, and re-reads the files
when they change on disk (checked on a handshake at most every `reload_interval`), so certificates
rotate without a restart:

- asyncio: the context handed to the server has an SNI callback (OpenSSL runs it on every
  handshake, with or without SNI) that moves the connection onto the newest context;
- gRPC: `grpc.dynamic_ssl_server_credentials` asks a fetcher before each new connection; the
  fetcher answers with the newest certificate configuration, or None to keep the current one.

Invariant: new files are used only once they load as a matching certificate and key (and CA
bundle) and did not change while being loaded; otherwise the previous material keeps serving and
the problem is logged once per change. A rotation never leaves a listener without a certificate.

`min_version`, `max_version` and `cipher_suites` apply to asyncio listeners; grpcio offers no way
to set them per server, so `grpc_unsupported()` names them for the listener to refuse.
"""

from __future__ import annotations

import logging
import ssl
import threading
from typing import TYPE_CHECKING, Any, Literal, Self

from pydantic import field_validator, model_validator

from metricgate.config.types import ComponentConfig, Duration
from metricgate.config.watched_files import WatchedFiles
from metricgate.errors import ConfigError

if TYPE_CHECKING:
    import grpc

log = logging.getLogger(__name__)

TlsVersion = Literal["1.0", "1.1", "1.2", "1.3"]
_VERSIONS = {
    "1.0": ssl.TLSVersion.TLSv1,
    "1.1": ssl.TLSVersion.TLSv1_1,
    "1.2": ssl.TLSVersion.TLSv1_2,
    "1.3": ssl.TLSVersion.TLSv1_3,
}

# Go's crypto/tls suite names (what Collector configs hold) -> OpenSSL's. Only suites Go counts as
# secure; TLS 1.3 suites are always enabled in both Go and OpenSSL and cannot be chosen.
_TLS12_SUITES = {
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305": "ECDHE-RSA-CHACHA20-POLY1305",
}
_TLS13_SUITES = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}


class ServerTls(ComponentConfig):
    """`tls` of a listener: its certificate, optional client CA (mutual TLS) and protocol limits."""

    cert_file: str
    """The server certificate chain (PEM), leaf first."""
    key_file: str
    """The certificate's private key (PEM, unencrypted)."""
    client_ca_file: str = ""
    """CAs (PEM) that sign client certificates; set, every client must present a valid one."""
    client_ca_file_reload: bool = True
    """Re-read `client_ca_file` together with the certificate (the Collector's default: false)."""
    min_version: TlsVersion = "1.2"
    max_version: TlsVersion | Literal[""] = ""
    """Highest version offered; empty means 1.3."""
    cipher_suites: list[str] = []
    """Go names of TLS 1.0-1.2 suites to allow (1.3 suites are always on); [] = safe defaults."""
    reload_interval: Duration = 30.0
    """Least time between two checks of the files for changes (made on a handshake); 0 = never."""

    @field_validator("cipher_suites")
    @classmethod
    def _known_suites(cls, suites: list[str]) -> list[str]:
        for suite in suites:
            if suite not in _TLS12_SUITES and suite not in _TLS13_SUITES:
                known = ", ".join(sorted(_TLS12_SUITES) + sorted(_TLS13_SUITES))
                raise ValueError(f"unknown or insecure cipher suite {suite!r} (known: {known})")
        return suites

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if not self.cert_file or not self.key_file:
            raise ValueError("a listener needs both cert_file and key_file")
        if self.max_version and _VERSIONS[self.max_version] < _VERSIONS[self.min_version]:
            raise ValueError(
                f"min_version {self.min_version} is above max_version {self.max_version}"
            )
        if (
            self.cipher_suites
            and all(suite in _TLS13_SUITES for suite in self.cipher_suites)
            and self.min_version != "1.3"
        ):
            raise ValueError(
                "cipher_suites lists only TLS 1.3 suites, which are always enabled; list TLS 1.2 "
                'suites too, or set min_version: "1.3"'
            )
        return self

    @property
    def mutual(self) -> bool:
        """True when clients must present a certificate signed by `client_ca_file`."""
        return bool(self.client_ca_file)

    def grpc_unsupported(self) -> list[str]:
        """Keys set here that a grpcio listener cannot honour (it should refuse the config)."""
        return [
            key
            for key, default in (("min_version", "1.2"), ("max_version", ""))
            if getattr(self, key) != default
        ] + (["cipher_suites"] if self.cipher_suites else [])


class ServerCertificates:
    """The live TLS material of one listener; reloads rotated files (see module docstring).

    Raises `ConfigError` naming `key_path` when the files cannot be loaded at construction.
    Thread-safe: gRPC calls the fetcher on its own threads.
    """

    def __init__(self, config: ServerTls, key_path: str = "tls") -> None:
        self.config = config
        self.key_path = key_path
        paths = [config.cert_file, config.key_file]
        if config.client_ca_file and config.client_ca_file_reload:
            paths.append(config.client_ca_file)
        self._files = WatchedFiles(paths, config.reload_interval)
        self._fixed_ca: bytes | None = None
        self._lock = threading.Lock()
        self.generation = 0
        """Bumped each time new material is taken into use."""
        self.reload_failures = 0
        try:
            if config.client_ca_file and not config.client_ca_file_reload:
                self._fixed_ca = WatchedFiles([config.client_ca_file], 0).read()[0]
            contents = self._files.read()
            context = self._build(contents)
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise ConfigError(f"{key_path}: cannot load the certificate: {exc}") from None
        self._pem = contents
        self._current = context
        self._base = context
        context.sni_callback = self._on_handshake
        self._grpc_generation = 0

    def ssl_context(self) -> ssl.SSLContext:
        """The context to pass to an asyncio/aiohttp server (`web.TCPSite(ssl_context=...)`)."""
        return self._base

    def current_context(self) -> ssl.SSLContext:
        """The context new handshakes use (after any reload)."""
        self.maybe_reload()
        return self._current

    def maybe_reload(self) -> bool:
        """Take rotated files into use when a check is due; True when new material was taken."""
        with self._lock:
            try:
                contents = self._files.poll()
            except OSError as exc:
                self._reload_failed(exc)
                return False
            if contents is None or contents == self._pem:
                return False
            try:
                context = self._build(contents)
            except (OSError, ssl.SSLError, ValueError) as exc:
                self._reload_failed(exc)
                return False
            context.sni_callback = self._on_handshake
            self._pem = contents
            self._current = context
            self.generation += 1
        log.info("%s: certificate files changed; new certificate in use", self.key_path)
        return True

    def _reload_failed(self, exc: Exception) -> None:
        self.reload_failures += 1
        log.error(
            "%s: the changed certificate files cannot be used (%s); the previous certificate "
            "keeps serving",
            self.key_path,
            exc,
        )

    def check_now(self) -> bool:
        """Check the files at once, whatever the interval (a SIGHUP or admin reload)."""
        self._files.force_check()
        return self.maybe_reload()

    def grpc_credentials(self) -> grpc.ServerCredentials:
        """Credentials for `grpc.aio.Server.add_secure_port`, following rotations."""
        import grpc

        initial = self._grpc_configuration()
        self._grpc_generation = self.generation
        return grpc.dynamic_ssl_server_credentials(
            initial, self._grpc_fetch, require_client_authentication=self.config.mutual
        )

    def _grpc_fetch(self) -> Any:
        # Runs on a gRPC core thread before each new connection; must not raise.
        try:
            self.maybe_reload()
            if self._grpc_generation == self.generation:
                return None
            self._grpc_generation = self.generation
            return self._grpc_configuration()
        except Exception:
            log.exception("%s: gRPC certificate fetch failed; keeping the old one", self.key_path)
            return None

    def _grpc_configuration(self) -> Any:
        import grpc

        with self._lock:
            cert, key = self._pem[:2]
            ca = self._client_ca(self._pem)
        return grpc.ssl_server_certificate_configuration([(key, cert)], root_certificates=ca)

    def _client_ca(self, contents: tuple[bytes, ...]) -> bytes | None:
        return contents[2] if len(contents) > 2 else self._fixed_ca

    def _on_handshake(self, connection: ssl.SSLObject, _name: str | None, _ctx: Any) -> None:
        try:
            self.maybe_reload()
            current = self._current
            if connection.context is not current:
                connection.context = current
        except Exception:
            # An exception here aborts the handshake; serving the old certificate is better.
            log.exception("%s: certificate reload failed during a handshake", self.key_path)

    def _build(self, contents: tuple[bytes, ...]) -> ssl.SSLContext:
        config = self.config
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = _VERSIONS[config.min_version]
        context.maximum_version = _VERSIONS[config.max_version or "1.3"]
        suites = [_TLS12_SUITES[s] for s in config.cipher_suites if s in _TLS12_SUITES]
        if suites:
            context.set_ciphers(":".join(suites))
        context.load_cert_chain(config.cert_file, config.key_file)
        ca = self._client_ca(contents)
        if ca is not None:
            context.load_verify_locations(cadata=ca.decode("ascii", errors="replace"))
            context.verify_mode = ssl.CERT_REQUIRED
        # load_cert_chain read the files by path: make sure they are still what we compared.
        if self._files.peek() != contents:
            raise ValueError("the files changed while being loaded; will retry")
        return context
