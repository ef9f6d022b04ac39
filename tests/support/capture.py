"""Test components: an in-memory `capture` exporter and an `inject` receiver.

`capture` records every batch it is given: a test config says `exporters: {capture: {}}` and reads
`CaptureExporter.instances["capture"].batches`. `inject` is a receiver a test pushes batches into
directly: `await InjectReceiver.instances["inject"].push(batch)`.
"""

from __future__ import annotations

import asyncio
from typing import ClassVar

from metricgate.components import BUILTIN_FACTORIES
from metricgate.config import ComponentConfig, load_config_text
from metricgate.errors import ConfigError
from metricgate.model import Batch
from metricgate.pipeline import (
    Consumer,
    Exporter,
    ExporterConfig,
    Factory,
    Kind,
    Receiver,
    Registry,
)


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


class InjectConfig(ComponentConfig):
    pass


class InjectReceiver(Receiver):
    instances: ClassVar[dict[str, InjectReceiver]] = {}

    def __init__(self, component_id: str, next_consumer: Consumer) -> None:
        super().__init__(component_id, next_consumer)
        InjectReceiver.instances[component_id] = self

    async def push(self, batch: Batch) -> None:
        await self.next_consumer.consume(batch)


def _create_inject(component_id: str, _: InjectConfig, next_consumer: Consumer | None) -> Receiver:
    assert next_consumer is not None
    return InjectReceiver(component_id, next_consumer)


INJECT_FACTORY = Factory("inject", Kind.RECEIVER, InjectConfig, _create_inject, "test injector")


def registry_with_capture() -> Registry:
    """The built-in registry plus the `capture` exporter and the `inject` receiver."""
    return Registry([*BUILTIN_FACTORIES, CAPTURE_FACTORY, INJECT_FACTORY])


def processor_config_problems(processor: str, body: str) -> list[str]:
    """The config errors of `processors: {<processor>: <body>}` in an inject -> capture pipeline
    (asserts that the config is refused)."""
    text = f"""
receivers: {{inject: {{}}}}
processors: {{{processor}: {body}}}
exporters: {{capture: {{}}}}
service: {{pipelines: {{metrics: {{receivers: [inject], processors: [{processor}],
  exporters: [capture]}}}}}}
"""
    try:
        load_config_text(text, registry_with_capture(), {})
    except ConfigError as error:
        return list(error.problems)
    raise AssertionError(f"processors.{processor}: {body} was accepted")
