"""OTLP/gRPC: `opentelemetry.proto.collector.metrics.v1.MetricsService/Export` on grpc.aio.

The method is registered with a generic handler and no deserializer, so the request arrives as raw
bytes and is parsed by `decode.py` (five times cheaper than gRPC's generated deserializer on a
1.5 MB request). gRPC itself enforces `max_recv_msg_size` (RESOURCE_EXHAUSTED, before the handler
runs) and handles gzip. The server takes the listener settings (`metricgate.listeners.grpc`:
connection limit, handshake timeout, streams per connection, keepalive policy).

The listener serves TLS with `tls` (`metricgate.listeners.grpc.bind`; gRPC core requires and
verifies client certificates under mutual TLS, and takes rotated certificates for new connections).

Each call goes through the receiver skeleton (`receiving/core.py`): admission (with the call's
metadata, peer and mutual-TLS certificate; with `auth`, authentication and the tenant's rights and
limits: UNAUTHENTICATED, PERMISSION_DENIED, RESOURCE_EXHAUSTED), the tenant's message size, the
in-flight budget (the message's size), decode, the tenant's rights (partial success naming the
refused metrics), consume (the tenant charged and stamped). A refusal is
answered with its error class's `grpc_code` (malformed or permanent: INVALID_ARGUMENT; full queue
or memory limit: RESOURCE_EXHAUSTED; shutting down or in-flight budget spent: UNAVAILABLE; a bug:
INTERNAL). Retryable refusals carry a `google.rpc.RetryInfo`
both inside `grpc-status-details-bin` (the standard place, read by the Go and Java SDKs) and as
`google.rpc.retryinfo-bin` (read by the Python SDK).

Invariant: the handler never raises anything but an abort with one of those codes.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Hashable, Mapping
from typing import Final, NoReturn, TypeAlias

import grpc
from grpc import aio

from metricgate.config.tls_server import ServerCertificates
from metricgate.errors import ConsumeError, RetryableError, TooLargeError
from metricgate.listeners.grpc import bind, server_options
from metricgate.receivers.otlp import responses
from metricgate.receivers.otlp.config import GrpcProtocolConfig
from metricgate.receivers.otlp.handler import ExportHandler
from metricgate.receiving.access import ReceiverAccess
from metricgate.receiving.core import REFUSALS, Refusal, RequestInfo
from metricgate.wire.otlp.status import STATUS_DETAILS_KEY

log = logging.getLogger("metricgate.receivers.otlp")

SERVICE: Final = "opentelemetry.proto.collector.metrics.v1.MetricsService"
TRANSPORT: Final = "grpc"
_GRACE_S: Final = 5.0

Context: TypeAlias = aio.ServicerContext[bytes, bytes]


class GrpcServer:
    """The OTLP/gRPC listener of one receiver."""

    def __init__(self, config: GrpcProtocolConfig, handler: ExportHandler) -> None:
        self.config = config
        self.handler = handler
        self.port: int | None = None
        self.access = ReceiverAccess.of(handler.core, config)
        """Authentication and tenant limits, when the listener has `auth`."""
        self.certificates: ServerCertificates | None = None
        self._server: aio.Server | None = None

    async def start(self) -> int:
        """Bind and serve; return the port (useful with port 0)."""
        server = aio.server(
            options=[
                *server_options(self.config),
                ("grpc.max_receive_message_length", self.config.max_receive_bytes),
            ]
        )
        export = grpc.unary_unary_rpc_method_handler(
            self._export, request_deserializer=None, response_serializer=None
        )
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, {"Export": export}),)
        )
        receiver_id = self.handler.core.receiver_id
        if self.config.tls is not None:
            self.certificates = ServerCertificates(
                self.config.tls, f"receivers.{receiver_id}.protocols.grpc.tls"
            )
        owner = f'receiver "{receiver_id}" (grpc)'
        bound = bind(server, owner, self.config.endpoint, self.certificates)
        await server.start()
        self._server = server
        self.port = bound
        return bound

    def rebind(self, handler: ExportHandler) -> None:
        """Hot reload: serve a rebuilt receiver's `handler` on this running server, its socket
        and open connections kept."""
        self.handler = handler
        self.access = ReceiverAccess.of(handler.core, self.config)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await server.stop(_GRACE_S)

    async def _export(self, request: bytes, context: Context) -> bytes:
        peer = context.peer()
        handler = self.handler
        core = handler.core
        # gRPC has read the message already; charging it still keeps decoding (and the batch
        # it makes) within the in-flight budget.
        lease = core.host.inflight.lease()
        call = GrpcCall(peer, context, self.config.max_receive_bytes)
        try:
            await core.admit(call, self.access)
            if len(request) > call.body_limit:
                raise TooLargeError(
                    f"message of {len(request)} bytes is over the {call.body_limit} byte limit"
                )
            lease.charge(len(request))
            result = handler.decode(request, False, core.stamp(call))
            lease.release()
            accepted = await handler.consume(result, call)
        except REFUSALS as error:
            await self._abort(context, error, call)
        except Exception:
            log.exception("otlp grpc export failed", extra={"receiver": core.receiver_id})
            await self._abort(context, ConsumeError("internal error while handling the call"), call)
        finally:
            lease.release()
            if self.access is not None:
                self.access.release(call)
        core.count_request(TRANSPORT, grpc.StatusCode.OK.name)
        return responses.export_response(accepted.rejected, accepted.error_message, False)

    async def _abort(self, context: Context, error: Refusal, call: GrpcCall) -> NoReturn:
        core = self.handler.core
        core.refused(error, call)
        code = grpc.StatusCode[error.grpc_code]
        core.count_request(TRANSPORT, code.name)
        metadata: tuple[tuple[str, str | bytes], ...] = ()
        if isinstance(error, RetryableError):
            details = responses.status(code.value[0], str(error), False, error.retry_after)
            metadata = (
                (STATUS_DETAILS_KEY, details),
                ("google.rpc.retryinfo-bin", responses.retry_info(error.retry_after)),
            )
        await context.abort(code, str(error), metadata)
        raise AssertionError("grpc's abort() always raises")


class GrpcCall(RequestInfo):
    """A call as admission checks see it: metadata and the client certificate, read on demand."""

    __slots__ = ("_context",)

    def __init__(self, peer: str, context: Context, body_limit: int) -> None:
        super().__init__(TRANSPORT, peer, body_limit)
        self._context = context

    @property
    def headers(self) -> Mapping[str, str]:
        metadata = self._context.invocation_metadata() or ()
        return {key: value for key, value in metadata if isinstance(value, str)}

    @property
    def peer_certificate(self) -> bytes | None:
        pem = self._context.auth_context().get("x509_pem_cert")
        return ssl.PEM_cert_to_DER_cert(pem[0].decode()) if pem else None

    @property
    def connection(self) -> Hashable:
        return self.peer  # the client's address and port: one per connection
