"""The `otlp` exporter component: encode each batch (`encode.py`) and send it (`transport.py`).

Retries, backoff and the bounded queue are the pipeline's `ExporterQueue`; this component makes
one attempt per `export()` call and says, by the error it raises, whether to try again.

Invariant: `export()` never retries and never swallows a failure.
"""

from __future__ import annotations

import struct

from metricgate.errors import PermanentError
from metricgate.exporters.otlp import status
from metricgate.exporters.otlp.config import OtlpExporterConfig
from metricgate.exporters.otlp.encode import OtlpEncoder
from metricgate.exporters.otlp.transport import GrpcTransport, HttpTransport, Transport
from metricgate.model import Batch
from metricgate.pipeline.component import Exporter
from metricgate.pipeline.host import Host
from metricgate.pipeline.registry import exporter_factory


class OtlpExporter(Exporter):
    """Sends batches as OTLP over gRPC or HTTP/protobuf."""

    def __init__(self, component_id: str, config: OtlpExporterConfig) -> None:
        super().__init__(component_id)
        self.config = config
        self.encoder = OtlpEncoder()
        self.transport: Transport = (
            GrpcTransport(config) if config.protocol == "grpc" else HttpTransport(config)
        )
        self.rejected_points = 0
        """Points the backend reported in `partial_success` (they are not retried)."""

    async def start(self, host: Host) -> None:
        await self.transport.open()

    async def export(self, batch: Batch) -> None:
        if not batch:
            return
        try:
            body = self.encoder.encode(batch)
        except (ValueError, TypeError, struct.error) as exc:  # e.g. an exemplar id not in hex
            raise PermanentError(f"batch cannot be encoded as OTLP: {exc}") from exc
        answer = await self.transport.send(body)
        self.rejected_points += status.check_response(answer, self.component_id)

    async def shutdown(self) -> None:
        await self.transport.close()


FACTORY = exporter_factory("otlp", OtlpExporterConfig, OtlpExporter, "sends OTLP (grpc or http)")
