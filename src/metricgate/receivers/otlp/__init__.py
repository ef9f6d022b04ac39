"""The `otlp` receiver: OTLP metrics over gRPC and HTTP (protobuf or JSON), as the Collector's.

Modules: `config` (the config model), `handler` (decode, consume), `responses` (what clients get
back), `http` and `grpc` (the listeners, on the receiver skeleton of `metricgate.receiving.core`
and `.http`). The codec (request -> `Batch`, protobuf and JSON) is `metricgate.wire.otlp`.

A hot reload that rebuilds the receiver hands it each listener whose settings did not change
(`adopt`), so clients of that protocol keep their connections.

Invariant: `start()` returns once every configured listener is bound (the bound ports are in
`grpc_port` / `http_port`); `shutdown()` stops accepting and is idempotent.
"""

from __future__ import annotations

import logging

from metricgate.pipeline.component import Component, Consumer, Receiver
from metricgate.pipeline.host import Host
from metricgate.pipeline.registry import receiver_factory
from metricgate.receivers.otlp.config import (
    GrpcProtocolConfig,
    HttpProtocolConfig,
    OtlpReceiverConfig,
    ProtocolsConfig,
)
from metricgate.receivers.otlp.grpc import GrpcServer
from metricgate.receivers.otlp.handler import ExportHandler
from metricgate.receivers.otlp.http import HttpServer
from metricgate.receiving.core import ReceiverCore
from metricgate.wire.otlp.decode import ProtobufDecoder
from metricgate.wire.otlp.points import DecodeError, DecodeResult
from metricgate.wire.otlp.schema import require_fast_protobuf

__all__ = [
    "FACTORY",
    "DecodeError",
    "DecodeResult",
    "GrpcProtocolConfig",
    "HttpProtocolConfig",
    "OtlpReceiver",
    "OtlpReceiverConfig",
    "ProtobufDecoder",
    "ProtocolsConfig",
]

log = logging.getLogger("metricgate.receivers.otlp")


class OtlpReceiver(Receiver):
    """Serves OTLP metrics on the configured protocols and feeds every batch to the pipelines."""

    def __init__(
        self, component_id: str, config: OtlpReceiverConfig, next_consumer: Consumer
    ) -> None:
        super().__init__(component_id, next_consumer)
        self.config = config
        self.decoder = ProtobufDecoder()
        self.grpc_port: int | None = None
        self.http_port: int | None = None
        self.core: ReceiverCore | None = None
        """The skeleton both transports share (admission checks, counting), once started."""
        self._grpc: GrpcServer | None = None
        self._http: HttpServer | None = None

    def adopt(self, previous: Component) -> bool:
        """Hot reload: keep each running listener (gRPC, HTTP) whose settings did not change,
        with its socket and open connections; it serves this receiver once started."""
        if not isinstance(previous, OtlpReceiver):
            return False
        mine, theirs = self.config.protocols, previous.config.protocols
        if previous._grpc is not None and mine.grpc == theirs.grpc:
            self._grpc, previous._grpc = previous._grpc, None
        if previous._http is not None and mine.http == theirs.http:
            self._http, previous._http = previous._http, None
        return self._grpc is not None or self._http is not None

    async def start(self, host: Host) -> None:
        require_fast_protobuf()
        core = self.core = ReceiverCore(self.component_id, self.next_consumer, host, log)
        handler = ExportHandler(core, self.decoder)
        protocols = self.config.protocols
        try:
            if self._grpc is not None:  # adopted
                self._grpc.rebind(handler)
                self.grpc_port = self._grpc.port
            elif protocols.grpc is not None:
                self._grpc = GrpcServer(protocols.grpc, handler)
                self.grpc_port = await self._grpc.start()
            if self._http is not None:
                self._http.rebind(handler)
                self.http_port = self._http.port
            elif protocols.http is not None:
                self._http = HttpServer(protocols.http, handler)
                self.http_port = await self._http.start()
        except BaseException:
            await self.shutdown()
            raise
        log.info(
            "otlp receiver listening",
            extra={
                "receiver": self.component_id,
                "grpc_port": self.grpc_port,
                "http_port": self.http_port,
            },
        )

    async def shutdown(self) -> None:
        grpc_server, self._grpc = self._grpc, None
        http_server, self._http = self._http, None
        if grpc_server is not None:
            await grpc_server.stop()
        if http_server is not None:
            await http_server.stop()


FACTORY = receiver_factory(
    "otlp", OtlpReceiverConfig, OtlpReceiver, "OTLP metrics over gRPC and HTTP (protobuf or JSON)"
)
