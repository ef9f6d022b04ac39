"""The `cloudwatch` exporter component: map (`mapping.py`), split (`requests.py`) and put.

`mode: emf` builds an `EmfExporter` (`emf.py`) instead.

A botocore client (JSON protocol, credentials from botocore's default chain) runs each
`PutMetricData` call in a worker thread. botocore's own retries are off: the shared sending core
retries. Answers: `Throttling` (400), any 5xx, and network errors or timeouts are retryable;
any other error (`InvalidParameterValue`, `AccessDenied`, ...) is permanent and its message
is logged and raised. Missing credentials are retryable (a role may come up later).

A batch maps to several requests; those already accepted are not sent again when the queue
retries the batch (mapping twice would also advance the cumulative state twice), as in the
datadog exporter: the requests still owed are kept for the most recent `2 * num_consumers`
batches.

Invariant: a request that succeeded is never sent again.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import Any

from metricgate.errors import PermanentError, RetryableError
from metricgate.exporters.cloudwatch import requests
from metricgate.exporters.cloudwatch.aws import AWS_ERRORS, classify, make_client
from metricgate.exporters.cloudwatch.config import CloudWatchExporterConfig
from metricgate.exporters.cloudwatch.emf import EmfExporter
from metricgate.exporters.cloudwatch.mapping import Datum, Mapper
from metricgate.model import Batch
from metricgate.pipeline.component import Consumer, Exporter
from metricgate.pipeline.host import Host
from metricgate.pipeline.registry import Factory, Kind

log = logging.getLogger("metricgate.exporters.cloudwatch")


class CloudWatchExporter(Exporter):
    """Puts batches to CloudWatch with PutMetricData."""

    def __init__(self, component_id: str, config: CloudWatchExporterConfig) -> None:
        super().__init__(component_id)
        self.config = config
        self.mapper = Mapper(config)
        self._client: Any = None
        self._host: Host | None = None
        self._owed: OrderedDict[int, tuple[Batch, list[list[Datum]]]] = OrderedDict()
        self._max_owed = 2 * config.sending_queue.num_consumers

    async def start(self, host: Host) -> None:
        self._host = host
        self._client = await asyncio.to_thread(make_client, self.config, "cloudwatch")

    async def shutdown(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await asyncio.to_thread(client.close)

    def _requests(self, batch: Batch) -> list[list[Datum]]:
        """The requests still owed for `batch`, mapping it on first sight."""
        found = self._owed.get(id(batch))
        if found is not None and found[0] is batch:
            return found[1]
        built = requests.build(
            self.mapper.map(batch), self.config.namespace, self.config.max_metrics_per_request
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
        self._owed[id(batch)] = (batch, built.requests)
        while len(self._owed) > self._max_owed:
            self._owed.popitem(last=False)
        return built.requests

    async def export(self, batch: Batch) -> None:
        if not batch:
            return
        pending = self._requests(batch)
        retry: RetryableError | None = None
        permanent: list[str] = []
        owed: list[list[Datum]] = []
        for data in pending:
            try:
                await self._put(data)
            except RetryableError as exc:
                owed.append(data)
                retry = retry or exc
            except PermanentError as exc:
                log.error(
                    "cloudwatch refused a request; dropped",
                    extra={"exporter": self.component_id, "error": str(exc)},
                )
                permanent.append(str(exc))
        if retry is not None:
            pending[:] = owed
            raise retry
        total = len(pending)
        self._owed.pop(id(batch), None)
        if permanent:
            raise PermanentError(f"{len(permanent)} of {total} requests refused: {permanent[0]}")

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
