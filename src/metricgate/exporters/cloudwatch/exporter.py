"""The `cloudwatch` exporter component: map (`mapping.py`), split (`requests.py`) and put.

`mode: emf` builds an `EmfExporter` (`emf.py`) instead.

A botocore client (JSON protocol, credentials from botocore's default chain) runs each
`PutMetricData` call in a worker thread. botocore's own retries are off: the shared sending core
retries. Answers: `Throttling` (400), any 5xx, and network errors or timeouts are retryable;
any other error (`InvalidParameterValue`, `AccessDenied`, ...) is permanent and its message
is logged and raised. Missing credentials are retryable (a role may come up later).

A batch maps to several requests, each knowing how many data points it carries. When some fail
retryably, `export` raises `PartialExportError` whose remainder is the unsent requests themselves
(an `Unsent`): the sending core retries only those, and the batch is never mapped twice (that would
advance the cumulative state twice). Requests refused for good are dropped and counted.

Invariant: a request that succeeded is never sent again.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from metricgate.errors import RetryableError
from metricgate.exporters.cloudwatch import requests
from metricgate.exporters.cloudwatch.aws import AWS_ERRORS, classify, make_client
from metricgate.exporters.cloudwatch.config import CloudWatchExporterConfig
from metricgate.exporters.cloudwatch.emf import EmfExporter
from metricgate.exporters.cloudwatch.mapping import Datum, Mapper
from metricgate.model import Batch
from metricgate.pipeline.component import Consumer, Exporter
from metricgate.pipeline.host import Host
from metricgate.pipeline.registry import Factory, Kind
from metricgate.pipeline.retry import Unsent, points_per_request, send_requests

log = logging.getLogger("metricgate.exporters.cloudwatch")


class CloudWatchExporter(Exporter):
    """Puts batches to CloudWatch with PutMetricData."""

    def __init__(self, component_id: str, config: CloudWatchExporterConfig) -> None:
        super().__init__(component_id)
        self.config = config
        self.mapper = Mapper(config)
        self._client: Any = None
        self._host: Host | None = None

    async def start(self, host: Host) -> None:
        self._host = host
        self._client = await asyncio.to_thread(make_client, self.config, "cloudwatch")

    async def shutdown(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await asyncio.to_thread(client.close)

    def _requests(self, batch: Batch) -> list[tuple[list[Datum], int]]:
        """`batch` as (request data, points carried) pairs."""
        followers: list[int] = []
        built = requests.build(
            self.mapper.map(batch, followers=followers),
            self.config.namespace,
            self.config.max_metrics_per_request,
        )
        dropped = self.mapper.take_dropped()
        if built.oversized:
            dropped["datum_too_large"] += built.oversized
        if dropped:
            log.warning(
                "points not sent to cloudwatch as they were",
                extra={"exporter": self.component_id, "reasons": dict(dropped)},
            )
            if self._host is not None:
                for reason, count in dropped.items():
                    self._host.telemetry.exporter_dropped.labels(self.component_id, reason).inc(
                        count
                    )
        points = points_per_request(followers, built.spans)
        return list(zip(built.requests, points, strict=True))

    async def export(self, batch: Batch) -> int | None:
        if isinstance(batch, Unsent) and batch.owned_by(self):
            pending: list[tuple[list[Datum], int]] = batch.requests
        elif not batch:
            return None
        else:
            pending = self._requests(batch)
        return await send_requests(self, pending, self._put, "PutMetricData requests")

    async def _put(self, data: list[Datum]) -> None:
        client = self._client
        if client is None:
            raise RetryableError("cloudwatch exporter is not started", 0.0)
        try:
            await asyncio.to_thread(
                client.put_metric_data, Namespace=self.config.namespace, MetricData=data
            )
        except AWS_ERRORS as exc:
            raise classify("PutMetricData", exc) from exc


def _create(component_id: str, config: CloudWatchExporterConfig, _: Consumer | None) -> Exporter:
    if config.mode == "emf":
        return EmfExporter(component_id, config)
    return CloudWatchExporter(component_id, config)


FACTORY = Factory(
    "cloudwatch",
    Kind.EXPORTER,
    CloudWatchExporterConfig,
    _create,
    "puts metrics to CloudWatch (PutMetricData or EMF)",
)
