"""How metricgate listens: hardened HTTP and gRPC servers shared by every component that serves.

Modules: `settings` (the listener config keys and their defaults), `connections` (per-connection
timeouts and the connection limit for aiohttp), `http` (`HttpListener`), `grpc` (gRPC server
options and binding), `bind` (`ListenError`, the one start-up error naming its owner).

Invariant: nothing here knows about metrics; receivers, exporters and the telemetry server build
on it, never the other way round.
"""

from metricgate.listeners.bind import ListenError
from metricgate.listeners.http import HttpListener
from metricgate.listeners.settings import (
    GrpcListenerSettings,
    HttpListenerSettings,
    HttpReceiverSettings,
)

__all__ = [
    "GrpcListenerSettings",
    "HttpListener",
    "HttpListenerSettings",
    "HttpReceiverSettings",
    "ListenError",
]
