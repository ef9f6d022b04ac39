"""gRPC listeners: the server options a `GrpcListenerSettings` stands for, and binding.

`grpc.so_reuseport` is 0, so a second process cannot silently share the port, except between the
workers of one `--workers N` set (`metricgate.role`), which share every port on purpose.
`max_connections` maps to gRPC core's `grpc.max_allowed_incoming_connections` (connections over
it are closed as they arrive), `handshake_timeout` to `grpc.server_handshake_timeout_ms` (a
connection that sends nothing is closed after it), `max_concurrent_streams` and the `keepalive`
block to their gRPC core arguments, as gRPC-Go's `keepalive.ServerParameters` and
`EnforcementPolicy` (the Collector's keys).

`bind` serves TLS when the settings have `tls` (`ServerCertificates.grpc_credentials()`: each new
connection gets the newest certificate after a rotation; `client_ca_file` makes gRPC require and
verify client certificates).

Invariant: a duration of 0 leaves gRPC's own default for that argument (infinite, for the
connection idle and age limits).
"""

from __future__ import annotations

from grpc import aio

from metricgate import role
from metricgate.config.listeners import GrpcListenerSettings
from metricgate.config.tls_server import ServerCertificates
from metricgate.config.types import split_endpoint
from metricgate.listeners.bind import ListenError, bind_failure


def server_options(settings: GrpcListenerSettings) -> list[tuple[str, int]]:
    """gRPC core channel arguments for a server with these settings."""
    server = settings.keepalive.server_parameters
    policy = settings.keepalive.enforcement_policy
    options = [
        ("grpc.so_reuseport", int(role.CURRENT.shared)),
        ("grpc.max_allowed_incoming_connections", settings.connection_limit()),
        ("grpc.max_concurrent_streams", settings.max_concurrent_streams),
        ("grpc.keepalive_permit_without_calls", int(policy.permit_without_stream)),
    ]
    durations = (
        ("grpc.server_handshake_timeout_ms", settings.handshake_timeout),
        ("grpc.max_connection_idle_ms", server.max_connection_idle),
        ("grpc.max_connection_age_ms", server.max_connection_age),
        ("grpc.max_connection_age_grace_ms", server.max_connection_age_grace),
        ("grpc.keepalive_time_ms", server.time),
        ("grpc.keepalive_timeout_ms", server.timeout),
        ("grpc.http2.min_ping_interval_without_data_ms", policy.min_time),
    )
    options += [(name, round(seconds * 1000)) for name, seconds in durations if seconds > 0]
    return options


def bind(
    server: aio.Server,
    owner: str,
    endpoint: str,
    certificates: ServerCertificates | None = None,
) -> int:
    """Add a port for `endpoint` (TLS with `certificates`, else plain text); return the bound port
    or raise `ListenError`."""
    host, port = split_endpoint(endpoint)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        if certificates is not None:
            bound = int(server.add_secure_port(address, certificates.grpc_credentials()))
        else:
            bound = int(server.add_insecure_port(address))
    except RuntimeError as exc:
        raise ListenError(owner, endpoint, bind_failure(host, port) or exc) from exc
    if not bound:
        raise ListenError(owner, endpoint, bind_failure(host, port) or OSError("bind failed"))
    return bound
