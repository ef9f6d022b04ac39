"""The `otlp` exporter component: encode each batch (`encode.py`) and send it (`transport.py`).

Retries, backoff, counting and the bounded queue are the pipeline's `ExporterQueue`; this
component makes one attempt per `export()` call and says, by the error it raises, whether to try
again. A success whose `partial_success` rejected points raises `PermanentError` with
`refused` (those points) and `delivered` (the rest): they are counted, never retried.

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

    async def start(self, host: Host) -> None:
        await self.transport.open()

    async def export(self, batch: Batch) -> int | None:
        if not batch:
            return None
        try:
            body = self.encoder.encode(batch)
        except (ValueError, TypeError, struct.error) as exc:  # e.g. an exemplar id not in hex
            raise PermanentError(f"batch cannot be encoded as OTLP: {exc}") from exc
        answer = await self.transport.send(body)
        rejected, message = status.rejected_points(answer, self.component_id)
        if rejected:
            points = batch.point_count()
            refused = min(rejected, points)
            raise PermanentError(
                f"backend rejected {rejected} of {points} points: {message}",
                refused=refused,
                delivered=points - refused,
            )
        return None

    async def shutdown(self) -> None:
        await self.transport.close()


FACTORY = exporter_factory("otlp", OtlpExporterConfig, OtlpExporter, "sends OTLP (grpc or http)")
