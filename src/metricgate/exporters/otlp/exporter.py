"""The `otlp` exporter component: encode each batch (`encode.py`) and send it (`transport.py`).

Retries, backoff, counting and the bounded queue are the pipeline's `ExporterQueue`; this
component makes one attempt per `export()` call and says, by the error it raises, whether to try
again. A success whose `partial_success` rejected points raises `PermanentError` with
`refused` (those points) and `delivered` (the rest): they are counted, never retried.

With `tenant_header`, a batch is split per tenant (once per resource, `TenantSplitter`) and each
tenant's part is encoded and sent as a request of its own, with the tenant in the header, all
parts at once. When some parts fail, what the others delivered or had refused is settled and a
`PartialExportError` owes only the parts to retry, so no tenant's data is sent twice. A part whose
tenant attribute is not a valid tenant id is refused (it could not go into the header).

Invariant: `export()` never retries and never swallows a failure; a request holds one tenant's
data when `tenant_header` is set.
"""

from __future__ import annotations

import asyncio
import struct

from metricgate.errors import PartialExportError, PermanentError, RetryableError
from metricgate.exporters.otlp import status
from metricgate.exporters.otlp.config import OtlpExporterConfig
from metricgate.exporters.otlp.transport import GrpcTransport, HttpTransport, Transport
from metricgate.model import Batch
from metricgate.pipeline.component import Exporter
from metricgate.pipeline.host import Host
from metricgate.pipeline.registry import exporter_factory
from metricgate.tenants.split import TenantSplitter
from metricgate.wire.otlp.encode import OtlpEncoder


class OtlpExporter(Exporter):
    """Sends batches as OTLP over gRPC or HTTP/protobuf."""

    def __init__(self, component_id: str, config: OtlpExporterConfig) -> None:
        super().__init__(component_id)
        self.config = config
        self.encoder = OtlpEncoder()
        self.transport: Transport = (
            GrpcTransport(config) if config.protocol == "grpc" else HttpTransport(config)
        )
        tenant_header = config.tenant_header
        self.tenants = TenantSplitter(tenant_header.attribute) if tenant_header else None
        self.default_tenant = tenant_header.default_tenant if tenant_header else ""

    async def start(self, host: Host) -> None:
        await self.transport.open()

    async def export(self, batch: Batch) -> int | None:
        if not batch:
            return None
        if self.tenants is None:
            await self._send(batch, "")
            return None
        parts = self.tenants.split(batch)
        if len(parts) == 1 and parts[0][0] is not None:
            await self._send(batch, parts[0][0] or self.default_tenant)
            return None
        return await self._send_parts(parts)

    async def _send(self, batch: Batch, tenant: str) -> None:
        """One request for `batch`; raises what the answer means (see module docstring)."""
        try:
            body = self.encoder.encode(batch)
        except (ValueError, TypeError, struct.error) as exc:  # e.g. an exemplar id not in hex
            raise PermanentError(f"batch cannot be encoded as OTLP: {exc}") from exc
        answer = await self.transport.send(body, tenant)
        rejected, message = status.rejected_points(answer, self.component_id)
        if rejected:
            points = batch.point_count()
            refused = min(rejected, points)
            raise PermanentError(
                f"backend rejected {rejected} of {points} points: {message}",
                refused=refused,
                delivered=points - refused,
            )

    async def _send_parts(self, parts: list[tuple[str | None, Batch]]) -> int | None:
        """Send each tenant's part at once; settle what was answered, owe the rest."""
        sendable = [(tenant, part) for tenant, part in parts if tenant is not None]
        outcomes = await asyncio.gather(
            *(self._send(part, tenant or self.default_tenant) for tenant, part in sendable),
            return_exceptions=True,
        )
        delivered = refused = 0
        errors: list[str] = []
        for tenant, part in parts:
            if tenant is None:
                refused += part.point_count()
                errors.append("a resource's tenant attribute is not a valid tenant id")
        owed: list[Batch] = []
        retryable: list[BaseException] = []
        for (tenant, part), outcome in zip(sendable, outcomes, strict=True):
            points = part.point_count()
            if outcome is None:
                delivered += points
            elif isinstance(outcome, PermanentError):
                part_refused = (
                    points - outcome.delivered if outcome.refused is None else (outcome.refused)
                )
                delivered += points - part_refused
                refused += part_refused
                errors.append(f"tenant {tenant!r}: {outcome}")
            elif isinstance(outcome, Exception):
                owed.append(part)
                retryable.append(outcome)
            else:
                raise outcome  # cancelled
        if not owed:
            if refused:
                raise PermanentError("; ".join(errors), refused=refused, delivered=delivered)
            return None
        if not delivered and not refused and len(retryable) == len(parts):
            raise retryable[0]  # nothing settled: retry the whole batch
        retry_after = max(
            (e.retry_after for e in retryable if isinstance(e, RetryableError)), default=0.0
        )
        raise PartialExportError(
            f"{len(owed)} of {len(parts)} tenants' requests failed: {retryable[0]}",
            Batch([group for part in owed for group in part.metrics]),
            delivered=delivered,
            refused=refused,
            retry_after=retry_after,
        )

    async def shutdown(self) -> None:
        await self.transport.close()


FACTORY = exporter_factory("otlp", OtlpExporterConfig, OtlpExporter, "sends OTLP (grpc or http)")
