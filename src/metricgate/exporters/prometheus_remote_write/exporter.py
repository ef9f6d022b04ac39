"""The `prometheus_remote_write` exporter: pushes the pipeline's metrics with remote-write.

A `LanedExporter`: the sending core runs it through ordered lanes (`pipeline/lanes.py`), the
remote-write "shards". `partition(batch, lanes)` encodes a batch into per-lane fragments
(`encoder.py`; a series always maps to lane `key % lanes`, so its samples keep their order);
`send(request)` makes one attempt to deliver one lane's request. Retrying, backoff, counting,
the disk queue (`sending_queue.storage`, or the deprecated `queue.directory`) and lane resizing
(`shards.min` .. `shards.max`) are the core's, shared with every exporter.

With `tenant_header`, the encoder keeps each tenant's series in fragments of their own and the
lanes never join two tenants' fragments, so `send` sets the header from `request.tenant`; the
shard key is the series' (whose labels include the tenant label the gateway stamps), so each
series keeps its order.

Protocol 1.0 by default; with `protobuf_message: io.prometheus.write.v2.Request`, 2.0 until the
receiver answers 415, then 1.0 for the rest of the process (`client.py` knows which is in use;
the `metricgate_exporter_remote_write_protocol` gauge shows it). Bodies are assembled as 1.0 and
converted at send time (`v2.py`), so the disk queue's records are the same whichever protocol is
in use; each compressed form is built once per request and kept for its retries. A 415 switches
the whole exporter to 1.0 (logged once) and the same body goes out again as 1.0 within the same
attempt: the receiver wrote nothing, so nothing is lost or duplicated. So does a 2xx without
`X-Prometheus-Remote-Write-Samples-Written` (a 1.0-only receiver read the body as an empty 1.0
request; at worst the resend duplicates identical samples). A body the converter cannot read goes
out as 1.0.

A hot reload that changes the endpoint, headers or credentials keeps the encoder (`adopt`) and,
with unchanged queue and shard settings, the queue and lanes with what they hold.

Invariant: only the core's lanes call `partition` (one call at a time, under their lock or
synchronously) and the expiry timer goes through `Lanes.submit`, so the per-series order the
encoder produces is the order the lanes send in.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Final

import cramjam

from metricgate.exporters.prometheus_remote_write.client import Client
from metricgate.exporters.prometheus_remote_write.config import RemoteWriteExporterConfig
from metricgate.exporters.prometheus_remote_write.encoder import Encoder
from metricgate.model import Batch
from metricgate.periodic import Periodic, sweep_interval
from metricgate.pipeline.component import Component, Exporter
from metricgate.pipeline.host import Host
from metricgate.pipeline.lanes import LaneRequest, Lanes, LaneSettings, Piece
from metricgate.pipeline.registry import exporter_factory
from metricgate.pipeline.snapshots import StateSnapshot
from metricgate.telemetry.metrics import Gauge, Reading
from metricgate.tenants.split import TenantSplitter
from metricgate.translate.options import TranslationOptions
from metricgate.wire.remotewrite.v2 import ConversionError, to_v2

log = logging.getLogger(__name__)


class RemoteWriteExporter(Exporter):
    """Encodes batches into lanes and sends their requests (see module docstring)."""

    def __init__(self, component_id: str, config: RemoteWriteExporterConfig) -> None:
        super().__init__(component_id)
        self.config = config
        self.translator = config.translator()
        tenant_header = config.tenant_header
        self.encoder = Encoder(
            self.translator,
            external_labels=config.external_labels,
            send_staleness=config.send_staleness,
            target_info=config.target_info.enabled,
            max_samples=config.max_samples_per_send,
            max_bytes=config.max_batch_bytes,
            tenants=TenantSplitter(tenant_header.attribute) if tenant_header else None,
            default_tenant=tenant_header.default_tenant if tenant_header else "",
        )
        self.client = Client(config)
        self.lanes: Lanes | None = None
        """Set by the sending core once its lanes run (`attach`)."""
        self._host: Host | None = None
        # A sweep reads every series' state (memory-bound: ~0.1 us each with 500k series), so
        # it runs every tenth of `metric_expiration` even past 15 s: a series ends at most 10 %
        # late, and its StaleNaN is only a hint to queries that it stopped.
        self._expiry = Periodic(
            f"{component_id} expiry sweep", sweep_interval(config.metric_expiration, 60.0),
            self.expire_now, log, {"exporter": component_id},
        )  # fmt: skip

    def adopt(self, previous: Component) -> bool:
        """Hot reload: keep `previous`'s encoder (each series' state: what was sent, staleness)
        when series are encoded the same way; the endpoint, headers, credentials and timeouts
        may differ. The sending core keeps the queue and lanes when their settings did not
        change (`ExporterQueue.can_take`)."""
        if not isinstance(previous, RemoteWriteExporter):
            return False
        if _encoding(previous.config) != _encoding(self.config):
            return False
        self.translator, self.encoder = previous.translator, previous.encoder
        return True

    @property
    def last_success(self) -> float:
        """Wall-clock time of the last delivered request (0 before the first)."""
        return self.lanes.last_success if self.lanes is not None else 0.0

    # -- state across restarts (`metricgate.pipeline.snapshots`) ---------------------------------

    snapshot_version = 1

    def snapshot_state(self) -> StateSnapshot:
        """The encoder's running totals of delta series."""
        return StateSnapshot(batch=self.encoder.snapshot())

    def restore_state(self, snapshot: StateSnapshot) -> None:
        self.encoder.restore(snapshot.batch, time.monotonic())

    # -- the LanedExporter contract ---------------------------------------------------------

    def lane_settings(self) -> LaneSettings:
        config = self.config
        return LaneSettings(
            min=config.shards.min,
            max=config.shards.max,
            capacity=config.shards.capacity,
            max_samples=config.max_samples_per_send,
            max_bytes=config.max_batch_bytes,
            flush_interval=config.flush_interval,
        )

    def attach(self, lanes: Lanes) -> None:
        self.lanes = lanes

    def partition(self, batch: Batch, lanes: int) -> Sequence[Sequence[Piece]]:
        per_lane, drops = self.encoder.encode(batch, lanes, time.monotonic())
        if drops and self._host is not None:
            dropped = self._host.telemetry.exporter_dropped
            for reason, count in drops.items():
                dropped.labels(self.component_id, reason).inc(count)
        return per_lane

    async def export(self, batch: Batch) -> int | None:
        raise TypeError(
            f"{self.component_id} sends through the sending core's ordered lanes: "
            "put an ExporterQueue in front of it instead of calling export()"
        )

    async def send(self, request: LaneRequest) -> None:
        """One attempt for one lane's request (protocol fallback included, see module docs)."""
        # Compressed bodies by protocol (True: 2.0), each built once and kept for retries.
        payloads = request.cache
        while True:
            v2 = self.client.v2
            if v2 and True not in payloads:
                payloads[True] = self._to_v2(request.body)
            payload = payloads.get(True) if v2 else None
            if payload is None:
                v2 = False
                payload = payloads.get(False)
                if payload is None:
                    payload = payloads[False] = bytes(cramjam.snappy.compress_raw(request.body))
            outcome = await self.client.send(payload, v2, request.tenant)
            if v2 and outcome.status == 415:
                if self.client.fall_back():
                    log.warning(
                        "remote-write receiver refused protocol 2.0 (415); using 1.0 from now on",
                        extra={"exporter": self.component_id, "body": outcome.message},
                    )
                continue
            if v2 and outcome.ok and outcome.samples_written is None and request.samples:
                # A 2.0 receiver must say what it wrote; one that does not is a 1.0 receiver that
                # parsed the body as an empty 1.0 request (Prometheus 2.x, VictoriaMetrics 1.x
                # answer 204 and store nothing). Resend as 1.0: at worst a duplicate, never a loss.
                if self.client.fall_back():
                    log.warning(
                        "remote-write receiver answered a 2.0 request without "
                        "X-Prometheus-Remote-Write-Samples-Written (it speaks 1.0 only); "
                        "using 1.0 from now on",
                        extra={"exporter": self.component_id, "status": outcome.status},
                    )
                continue
            if outcome.ok:
                written = outcome.samples_written
                if v2 and written is not None and written < request.samples:
                    log.debug(
                        "remote-write receiver wrote fewer samples than sent",
                        extra={
                            "exporter": self.component_id,
                            "sent": request.samples,
                            "written": written,
                        },
                    )
                return
            raise outcome.error()

    def _to_v2(self, body: bytes) -> bytes | None:
        """The compressed 2.0 form of the 1.0 `body`, or None if it cannot be converted."""
        try:
            converted = to_v2(body)
        except ConversionError as exc:
            log.warning(
                "remote-write body not convertible to 2.0; sending it as 1.0",
                extra={"exporter": self.component_id, "error": str(exc)},
            )
            return None
        return bytes(cramjam.snappy.compress_raw(converted))

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self, host: Host) -> None:
        self._host = host
        if self.config.queue.directory:
            log.warning(
                "prometheus_remote_write: queue.directory is deprecated; "
                "use sending_queue.storage (the same keys)",
                extra={"exporter": self.component_id},
            )
        await self.client.start()
        self._expiry.start()
        exporter_id, telemetry, client = self.component_id, host.telemetry, self.client
        readings: list[tuple[Gauge, Reading]] = [
            (
                telemetry.gauge(
                    "metricgate_exporter_remote_write_shards",
                    "Shards (ordered lanes, concurrent senders) a remote-write exporter runs.",
                    ["exporter"],
                ),
                lambda: {(exporter_id,): float(len(self.lanes) if self.lanes is not None else 0)},
            ),
            (
                telemetry.gauge(
                    "metricgate_exporter_remote_write_protocol",
                    "Remote-write protocol an exporter sends with: 1 for the one in use, else 0.",
                    ["exporter", "protocol"],
                ),
                lambda: {
                    (exporter_id, protocol): float(client.protocol == protocol)
                    for protocol in ("1.0", "2.0")
                },
            ),
            (
                telemetry.gauge(
                    "metricgate_exporter_remote_write_last_send_timestamp_seconds",
                    "Unix time of a remote-write exporter's last delivered request.",
                    ["exporter"],
                ),
                lambda: {(exporter_id,): self.last_success},
            ),
            (telemetry.exporter_active_series, lambda: {(exporter_id,): float(len(self.encoder))}),
        ]
        for gauge, read in readings:
            self.observe(gauge, read)

    async def shutdown(self) -> None:
        await self._expiry.stop()
        await self.client.close()

    async def expire_now(self) -> int:
        """Forget series past `metric_expiration` (sending their StaleNaNs); returns how many."""
        lanes = self.lanes
        if lanes is None:
            return 0
        removed = 0

        def expire(count: int) -> Sequence[Sequence[Piece]]:
            nonlocal removed
            cutoff = time.monotonic() - self.config.metric_expiration
            per_lane, removed = self.encoder.expire(cutoff, count, time.time_ns() // 1_000_000)
            return per_lane

        await lanes.submit(expire)
        return removed


_ENCODING_KEYS: Final = (
    *TranslationOptions.model_fields,
    "external_labels",
    "send_staleness",
    "target_info",
    "max_samples_per_send",
    "max_batch_bytes",
    "tenant_header",
)


def _encoding(config: RemoteWriteExporterConfig) -> tuple[object, ...]:
    """What the encoder's per-series state depends on."""
    return tuple(getattr(config, key) for key in _ENCODING_KEYS)


FACTORY = exporter_factory(
    "prometheus_remote_write",
    RemoteWriteExporterConfig,
    RemoteWriteExporter,
    "pushes the pipeline's metrics to a Prometheus remote-write endpoint (protocol 1.0 or 2.0)",
)
