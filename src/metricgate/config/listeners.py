"""Listener settings every endpoint takes, in the Collector's `confighttp` / `configgrpc` spirit.

Every listener (receivers, the `prometheus` exporter's page, the telemetry server) takes `tls`
(`config.tls_server.ServerTls`: certificate, client CAs for mutual TLS, rotation) and `auth`
(`config.auth.AuthSettings`: the authenticator extension checking its requests), defined once
here in `ListenerSecurity`. HTTP listeners take `read_header_timeout`, `idle_timeout` and
`max_connections`; HTTP receivers add `read_timeout` for request bodies. gRPC listeners take
`max_connections`, `max_concurrent_streams`, `handshake_timeout` and the Collector's `keepalive`
block, and refuse the `tls` keys grpcio cannot honour. A timeout of 0 turns that timeout off.

Invariant: every default is safe on an open network: no connection can stay open for ever
without sending a request, and no listener can take more connections than the process has file
descriptors for (`max_connections` left unset derives from `RLIMIT_NOFILE`). Without `tls` and
`auth` a listener serves plain text to everyone, as before they existed.
"""

from __future__ import annotations

import resource
from typing import Final, Self

from pydantic import Field, model_validator

from metricgate.config.auth import AuthSettings
from metricgate.config.tls_server import ServerTls
from metricgate.config.types import ComponentConfig, Duration

MAX_DEFAULT_CONNECTIONS: Final = 4096


def default_max_connections() -> int:
    """An eighth of the open-file limit (at least 16, at most 4096): several listeners flooded at
    once still leave descriptors for the others, for outgoing connections and for files."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_DEFAULT_CONNECTIONS
    return max(16, min(MAX_DEFAULT_CONNECTIONS, soft // 8))


class ListenerSecurity(ComponentConfig):
    """`tls` and `auth`: what every listener, HTTP or gRPC, takes to serve only whom it should."""

    tls: ServerTls | None = None
    """Serve TLS with this certificate (mutual TLS with `client_ca_file`); unset: plain text."""
    auth: AuthSettings | None = None
    """Authenticate every request with this extension; unset: everyone is admitted."""


class HttpListenerSettings(ListenerSecurity):
    """`read_header_timeout`, `idle_timeout`, `max_connections` (and `tls`, `auth`) of an HTTP
    endpoint."""

    read_header_timeout: Duration = 10.0
    """Time a connection has to send a request's headers, from its first byte (or from being
    accepted); a connection that takes longer is closed."""
    idle_timeout: Duration = 120.0
    """Time a keep-alive connection may wait for its next request before it is closed."""
    max_connections: int | None = Field(default=None, ge=1)
    """Connections open at once; at the limit, the connection waiting longest for a request is
    closed to make room, or the new one when all are busy. Unset: `RLIMIT_NOFILE / 8`, between
    16 and 4096."""

    def connection_limit(self) -> int:
        return self.max_connections or default_max_connections()


class HttpReceiverSettings(HttpListenerSettings):
    """An HTTP receiver's listener settings: those of every HTTP endpoint, plus `read_timeout`."""

    read_timeout: Duration = 60.0
    """Time to receive a request's body once its headers are in; longer gets 408 and a close."""


class KeepaliveServerParameters(ComponentConfig):
    """`keepalive.server_parameters` (gRPC-Go's `keepalive.ServerParameters`)."""

    max_connection_idle: Duration = 120.0
    """A connection without calls this long is sent GOAWAY (clients reconnect when needed)."""
    max_connection_age: Duration = 0.0
    """Connections older than this are sent GOAWAY; 0 never."""
    max_connection_age_grace: Duration = 0.0
    """Time calls may take to finish after `max_connection_age`; 0 no limit."""
    time: Duration = 7200.0
    """Ping a connection quiet for this long, to see that it is alive."""
    timeout: Duration = 20.0
    """Close the connection if that ping is not answered in this time."""


class KeepaliveEnforcementPolicy(ComponentConfig):
    """`keepalive.enforcement_policy`: how often clients may ping (too often: GOAWAY)."""

    min_time: Duration = 300.0
    """Shortest interval between a client's pings."""
    permit_without_stream: bool = False
    """Whether clients may ping while they have no call in flight."""


class KeepaliveSettings(ComponentConfig):
    """`keepalive`: the Collector's (gRPC-Go's) server keepalive block."""

    server_parameters: KeepaliveServerParameters = KeepaliveServerParameters()
    enforcement_policy: KeepaliveEnforcementPolicy = KeepaliveEnforcementPolicy()


class GrpcListenerSettings(ListenerSecurity):
    """`max_connections`, `max_concurrent_streams`, `handshake_timeout`, `keepalive` (and `tls`,
    `auth`) of a gRPC endpoint."""

    max_connections: int | None = Field(default=None, ge=1)
    """Connections open at once; more are closed as they arrive. Unset: as for HTTP."""
    max_concurrent_streams: int = Field(default=100, ge=1)
    """Calls in flight on one connection."""
    handshake_timeout: Duration = 10.0
    """Time a new connection has to complete its (TLS and) HTTP/2 handshake."""
    keepalive: KeepaliveSettings = KeepaliveSettings()

    @model_validator(mode="after")
    def _grpc_tls(self) -> Self:
        unsupported = self.tls.grpc_unsupported() if self.tls is not None else []
        if unsupported:
            raise ValueError(
                f"tls.{', tls.'.join(unsupported)}: grpcio cannot set "
                f"{' or '.join(unsupported)} on a gRPC server; remove "
                f"{'them' if len(unsupported) > 1 else 'it'} (TLS 1.2 and 1.3 with OpenSSL's "
                "default suites are served)"
            )
        return self

    def connection_limit(self) -> int:
        return self.max_connections or default_max_connections()
