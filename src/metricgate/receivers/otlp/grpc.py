"""OTLP/gRPC: `opentelemetry.proto.collector.metrics.v1.MetricsService/Export` on grpc.aio.

The method is registered with a generic handler and no deserializer, so the request arrives as raw
bytes and is parsed by `decode.py` (five times cheaper than gRPC's generated deserializer on a
1.5 MB request). gRPC itself enforces `max_recv_msg_size` (RESOURCE_EXHAUSTED, before the handler
runs) and handles gzip. `grpc.so_reuseport` is 0, so a second process cannot silently share the
port.

Status codes: malformed request or permanent refusal -> INVALID_ARGUMENT; full queue or memory
limit -> RESOURCE_EXHAUSTED; shutting down -> UNAVAILABLE; a bug -> INTERNAL. Retryable refusals
carry a `google.rpc.RetryInfo` both inside `grpc-status-details-bin` (the standard place, read by
the Go and Java SDKs) and as `google.rpc.retryinfo-bin` (read by the Python SDK).

Invariant: the handler never raises anything but an abort with one of those codes.
"""

from __future__ import annotations

import logging
from typing import Final

import grpc
from grpc import aio

from metricgate.config.types import split_endpoint
from metricgate.receivers.otlp import responses
from metricgate.receivers.otlp.config import GrpcProtocolConfig
from metricgate.receivers.otlp.handler import INTERNAL, MALFORMED, PERMANENT, ExportHandler, Refusal

log = logging.getLogger("metricgate.receivers.otlp")

SERVICE: Final = "opentelemetry.proto.collector.metrics.v1.MetricsService"
_GRACE_S: Final = 5.0

_CODES: Final = {
    MALFORMED: grpc.StatusCode.INVALID_ARGUMENT,
    PERMANENT: grpc.StatusCode.INVALID_ARGUMENT,
    "queue_full": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "memory_limit": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "unavailable": grpc.StatusCode.UNAVAILABLE,
    INTERNAL: grpc.StatusCode.INTERNAL,
}


class GrpcServer:
    """The OTLP/gRPC listener of one receiver."""

    def __init__(self, config: GrpcProtocolConfig, handler: ExportHandler) -> None:
        self.config = config
        self.handler = handler
        self.port: int | None = None
        self._server: aio.Server | None = None

    async def start(self) -> int:
        """Bind and serve; return the port (useful with port 0)."""
        server = aio.server(
            options=[
                ("grpc.so_reuseport", 0),
                ("grpc.max_receive_message_length", self.config.max_receive_bytes),
            ]
        )
        export = grpc.unary_unary_rpc_method_handler(
            self._export, request_deserializer=None, response_serializer=None
        )
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, {"Export": export}),)
        )
        host, port = split_endpoint(self.config.endpoint)
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            bound = int(server.add_insecure_port(address))
        except RuntimeError as exc:
            raise OSError(f"otlp grpc cannot listen on {self.config.endpoint}: {exc}") from exc
        if not bound:
            raise OSError(f"otlp grpc cannot listen on {self.config.endpoint}")
        await server.start()
        self._server = server
        self.port = bound
        return bound

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await server.stop(_GRACE_S)

    async def _export(self, request: bytes, context: aio.ServicerContext[bytes, bytes]) -> bytes:
        peer = context.peer()
        handler = self.handler
        try:
            handler.admit("grpc", peer)
            accepted = await handler.export(request, False, "grpc", peer)
        except Refusal as refusal:
            fallback = grpc.StatusCode.INTERNAL
            if refusal.retry_after is not None:
                fallback = grpc.StatusCode.UNAVAILABLE
            code = _CODES.get(refusal.reason, fallback)
            handler.count_request("grpc", code.name)
            metadata: tuple[tuple[str, str | bytes], ...] = ()
            if refusal.retry_after is not None:
                details = responses.status(
                    code.value[0], refusal.message, False, refusal.retry_after
                )
                metadata = (
                    ("grpc-status-details-bin", details),
                    ("google.rpc.retryinfo-bin", responses.retry_info(refusal.retry_after)),
                )
            await context.abort(code, refusal.message, metadata)
            raise  # abort() always raises; this keeps the type checker informed
        handler.count_request("grpc", grpc.StatusCode.OK.name)
        return responses.export_response(accepted.rejected, accepted.error_message, False)
