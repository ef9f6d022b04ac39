"""The `prometheus_remote_write` receiver: Prometheus remote-write 1.0 and 2.0 over HTTP.

Modules: `config` (the config model), `decode` (request -> `Batch` of `native_prometheus`
metrics, the series caches), `labels` (validating and sorting label sets), `result` (a request's
points and what was refused), `http` (the listener and its status codes). The wire schema and the
1.0 entry layout read in place live in `metricgate.wire.remotewrite`, shared with the exporter.

Invariant: `start()` returns once the listener is bound (the port is in `port`); `shutdown()`
stops accepting and is idempotent.
"""

from __future__ import annotations

import logging

from metricgate.pipeline.component import Consumer, Receiver
from metricgate.pipeline.host import Host
from metricgate.pipeline.registry import receiver_factory
from metricgate.receivers.prometheus_remote_write.config import RemoteWriteReceiverConfig
from metricgate.receivers.prometheus_remote_write.decode import RemoteWriteDecoder
from metricgate.receivers.prometheus_remote_write.http import RemoteWriteServer
from metricgate.receivers.prometheus_remote_write.result import DecodeError, DecodeResult

__all__ = [
    "FACTORY",
    "DecodeError",
    "DecodeResult",
    "RemoteWriteDecoder",
    "RemoteWriteReceiver",
    "RemoteWriteReceiverConfig",
]

log = logging.getLogger("metricgate.receivers.prometheus_remote_write")


class RemoteWriteReceiver(Receiver):
    """Accepts remote-write requests and feeds their samples to the pipelines."""

    def __init__(
        self, component_id: str, config: RemoteWriteReceiverConfig, next_consumer: Consumer
    ) -> None:
        super().__init__(component_id, next_consumer)
        self.config = config
        self.decoder = RemoteWriteDecoder(strict=config.strict)
        self.port: int | None = None
        self._server: RemoteWriteServer | None = None

    async def start(self, host: Host) -> None:
        server = RemoteWriteServer(
            self.component_id, self.config, self.next_consumer, host, self.decoder
        )
        self.port = await server.start()
        self._server = server
        log.info(
            "prometheus_remote_write receiver listening",
            extra={"receiver": self.component_id, "port": self.port, "path": self.config.path},
        )

    async def shutdown(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await server.stop()


FACTORY = receiver_factory(
    "prometheus_remote_write",
    RemoteWriteReceiverConfig,
    RemoteWriteReceiver,
    "Prometheus remote-write 1.0 and 2.0 (snappy protobuf over HTTP)",
)
