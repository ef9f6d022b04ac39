"""The `debug` exporter: logs what flows through a pipeline, for troubleshooting configs.

`basic` logs one line per batch (metrics and points); `detailed` also logs every point with its
series and value. Never use `detailed` on a busy production pipeline.
"""

from __future__ import annotations

import logging
from typing import Literal

from metricgate.model import Batch
from metricgate.pipeline.component import Exporter
from metricgate.pipeline.queue import ExporterConfig
from metricgate.pipeline.registry import exporter_factory

log = logging.getLogger("metricgate.debug")


class DebugExporterConfig(ExporterConfig):
    """`exporters.debug`."""

    verbosity: Literal["basic", "detailed"] = "basic"


class DebugExporter(Exporter):
    """Logs batches at info level."""

    def __init__(self, component_id: str, config: DebugExporterConfig) -> None:
        super().__init__(component_id)
        self.config = config

    async def export(self, batch: Batch) -> None:
        log.info(
            "batch",
            extra={
                "exporter": self.component_id,
                "metrics": len(batch.metrics),
                "points": batch.point_count(),
            },
        )
        if self.config.verbosity != "detailed":
            return
        for group in batch.metrics:
            metric = group.metric
            for series, value, timestamp, flags in zip(
                group.series, group.values, group.timestamps, group.flags, strict=True
            ):
                log.info(
                    "point",
                    extra={
                        "metric": metric.name,
                        "kind": metric.kind.name.lower(),
                        "unit": metric.unit,
                        "temporality": metric.temporality.name.lower(),
                        "attributes": dict(series.attributes),
                        "resource": dict(metric.resource.attributes),
                        "scope": metric.scope.name,
                        "value": value,
                        "time_unix_nano": timestamp,
                        "flags": flags,
                    },
                )


FACTORY = exporter_factory("debug", DebugExporterConfig, DebugExporter, "logs batches")
