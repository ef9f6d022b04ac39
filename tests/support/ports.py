"""Free TCP ports on loopback for subprocesses under test.

Ports come from below the kernel's ephemeral range: a port taken from that range with
`bind(("127.0.0.1", 0))` can be handed to an outgoing connection's source address before the
subprocess under test binds it (or between a kill -9 and its restart on the same ports), which
fails that bind with EADDRINUSE. Ports handed out once are not handed out again in this session,
so a test that restarts a gateway on its old ports cannot lose them to another test."""

from __future__ import annotations

import random
import socket
from pathlib import Path

_HANDED_OUT: set[int] = set()
_LOWEST = 10_000


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32_768, 60_999


def _candidates(count: int) -> list[int]:
    """Up to `count` random ports outside the ephemeral range, none handed out before."""
    low, high = _ephemeral_range()
    spans = [span for span in (range(_LOWEST, low), range(high + 1, 65_536)) if len(span) > 100]
    if not spans:
        return []
    drawn = (random.choice(random.choice(spans)) for _ in range(count))
    return [port for port in drawn if port not in _HANDED_OUT]


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing uses right now, outside the ephemeral range
    and never returned before in this session."""
    for port in _candidates(200):
        if _bindable(port):
            _HANDED_OUT.add(port)
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    _HANDED_OUT.add(port)
    return port
