"""How metricgate listens: hardened HTTP and gRPC servers shared by every component that serves.

The listener config keys and their defaults (`tls` and `auth` included) are config types, in
`metricgate.config.listeners` (re-exported here), so the config loader needs nothing above
`config`. Modules: `connections` (per-connection timeouts and the connection limit for
aiohttp), `http` (`HttpListener`, TLS included), `grpc` (gRPC server options and binding, TLS
included), `bind` (`ListenError`, the one start-up error naming its owner).

Invariant: nothing here knows about metrics; receivers, exporters and the telemetry server build
on it, never the other way round.
"""

from metricgate.config.listeners import (
    GrpcListenerSettings,
    HttpListenerSettings,
    HttpReceiverSettings,
    ListenerSecurity,
)
from metricgate.listeners.bind import ListenError
from metricgate.listeners.http import HttpListener, peer_certificate

__all__ = [
    "GrpcListenerSettings",
    "HttpListener",
    "HttpListenerSettings",
    "HttpReceiverSettings",
    "ListenError",
    "ListenerSecurity",
    "peer_certificate",
]
