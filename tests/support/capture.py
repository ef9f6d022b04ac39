"""An in-memory exporter for tests: records every batch it is given.

Registered under the type name `capture`, so a test config can say `exporters: {capture: {}}` and
then read `CaptureExporter.instances["capture"].batches`.
"""

from __future__ import annotations

import asyncio
from typing import ClassVar

from metricgate.components import BUILTIN_FACTORIES
from metricgate.model import Batch
from metricgate.pipeline import Consumer, Exporter, ExporterConfig, Factory, Kind, Registry


class CaptureConfig(ExporterConfig):
    delay_s: float = 0.0
    """Sleep this long in every export, to simulate a slow backend."""


class CaptureExporter(Exporter):
    instances: ClassVar[dict[str, CaptureExporter]] = {}

    def __init__(self, component_id: str, config: CaptureConfig) -> None:
        super().__init__(component_id)
        self.config = config
        self.batches: list[Batch] = []
        self.received = asyncio.Event()
        CaptureExporter.instances[component_id] = self

    async def export(self, batch: Batch) -> None:
        if self.config.delay_s:
            await asyncio.sleep(self.config.delay_s)
        self.batches.append(batch)
        self.received.set()

    def points(self) -> int:
        return sum(b.point_count() for b in self.batches)


def _create(component_id: str, config: CaptureConfig, _: Consumer | None) -> CaptureExporter:
    return CaptureExporter(component_id, config)


CAPTURE_FACTORY = Factory("capture", Kind.EXPORTER, CaptureConfig, _create, "test capture")


def registry_with_capture() -> Registry:
    """The built-in registry plus the `capture` exporter."""
    return Registry([*BUILTIN_FACTORIES, CAPTURE_FACTORY])
