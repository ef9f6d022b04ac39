"""`ListenError`: the one start-up error of every listener, naming who could not listen where.

`metricgate run` prints it as `could not start: [Errno 98] exporter "prometheus" cannot listen on
0.0.0.0:9464: Address already in use`.

Invariant: the message always names the owner (component id and protocol, or the telemetry
setting) and the endpoint as configured.
"""

from __future__ import annotations

import os
import socket


class ListenError(OSError):
    """A listener could not bind its endpoint (an `OSError` with the cause's errno)."""

    def __init__(self, owner: str, endpoint: str, cause: BaseException) -> None:
        errno = getattr(cause, "errno", None)
        if isinstance(errno, int) and errno > 0:
            reason = os.strerror(errno)
        else:
            reason = getattr(cause, "strerror", None) or str(cause) or type(cause).__name__
        super().__init__(errno or 0, f"{owner} cannot listen on {endpoint}: {reason}")
        self.owner = owner
        self.endpoint = endpoint


def bind_failure(host: str, port: int) -> OSError | None:
    """Why binding `host:port` fails, found by trying it (for servers such as gRPC's that only
    say that it failed); None if it binds now."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        return exc
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                return exc
    return None
