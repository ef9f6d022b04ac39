"""Stalled connections against a gateway process with 1,024 file descriptors.

1,100 connections that send nothing or half a header used to hold a descriptor each for ever, so
the process ran out and every ordinary request failed. Now each listener holds at most its
`max_connections` (an eighth of the descriptor limit by default) and a new connection closes
the one that has waited longest for a request; on gRPC, stalled connections over the limit are
closed as they arrive and the rest after `handshake_timeout`.
"""

from __future__ import annotations

import os
import resource
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest
import requests

from tests.support.gateway import DEFAULT_TEMPLATE, Gateway, run_gateway
from tests.support.poll import block_until

pytestmark = pytest.mark.integration

FD_LIMIT = 1024
STALLED = 1100
METHOD = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
TEMPLATE = DEFAULT_TEMPLATE.replace(
    'grpc: {{endpoint: "127.0.0.1:{grpc}"}}',
    'grpc: {{endpoint: "127.0.0.1:{grpc}", handshake_timeout: 1s}}',
)
assert "handshake_timeout" in TEMPLATE


def lower_fd_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = STALLED + 512
    assert hard == resource.RLIM_INFINITY or hard >= needed, f"need {needed} descriptors"
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, needed), hard))
    try:
        with run_gateway(tmp_path, TEMPLATE, preexec_fn=lower_fd_limit) as running:
            yield running
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@contextmanager
def stalled_connections(port: int, partial: bytes) -> Iterator[list[socket.socket]]:
    """`STALLED` connections to `port`; every other one sends `partial` and stops."""
    opened: list[socket.socket] = []
    try:
        for number in range(STALLED):
            connection = socket.create_connection(("127.0.0.1", port), timeout=10)
            if number % 2:
                connection.sendall(partial)
            opened.append(connection)
        yield opened
    finally:
        for connection in opened:
            connection.close()


def descriptors(gateway: Gateway) -> int:
    return len(os.listdir(f"/proc/{gateway.process.pid}/fd"))


def ordinary_requests_succeed(gateway: Gateway, round_number: int) -> None:
    """An OTLP/HTTP push, a scrape that shows it, the telemetry server."""
    name = f"still_served_{round_number}"
    assert gateway.post_gauge(name, [({"round": str(round_number)}, 1.0, 1)]) == 200
    block_until(lambda: name in gateway.scrape(), what=f"{name} on the scrape page")
    response = requests.get(gateway.url("telemetry", "/metrics"), timeout=10)
    assert response.status_code == 200


def export_grpc(gateway: Gateway) -> bool:
    with grpc.insecure_channel(f"127.0.0.1:{gateway.ports['grpc']}") as channel:
        call = channel.unary_unary(METHOD, request_serializer=None, response_deserializer=None)
        try:
            call(b"", timeout=5)
        except grpc.RpcError:
            return False
        return True


def test_stalled_http_connections_never_lock_ordinary_requests_out(gateway: Gateway) -> None:
    partial = b"POST /v1/metrics HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/x-pro"
    with stalled_connections(gateway.ports["http"], partial):
        for round_number in range(5):
            ordinary_requests_succeed(gateway, round_number)
        # the listener holds at most an eighth of the limit; the process stays far from it
        assert descriptors(gateway) < FD_LIMIT // 2
    assert gateway.process.poll() is None


def test_stalled_grpc_connections_are_bounded_and_closed(gateway: Gateway) -> None:
    with stalled_connections(gateway.ports["grpc"], b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"):
        for round_number in range(5):
            ordinary_requests_succeed(gateway, round_number)
        assert descriptors(gateway) < FD_LIMIT // 2
        # the stalled ones are closed after handshake_timeout: gRPC clients get in again
        block_until(lambda: export_grpc(gateway), timeout=30, what="a gRPC export")
    assert gateway.process.poll() is None
