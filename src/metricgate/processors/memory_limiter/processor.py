"""The `memory_limiter` processor: deprecated, use `service.memory_limiter`.

Memory is a property of the process, not of a pipeline, so the limiter is a service setting (as
the Collector made it an extension). This processor is still accepted with the same keys: when the
config is loaded its settings become `service.memory_limiter` (unless that is set, which then
wins), with a deprecation warning; every pipeline listing it must agree on them. At run time it
only repeats the receivers' admission check on each batch, as it always did.

Invariant: this processor holds no state and never drops data; refusing is the service's limiter's
job (`metricgate.pipeline.memory`).
"""

from __future__ import annotations

from metricgate.config.memory_limiter import MemoryLimiterSettings
from metricgate.config.types import ComponentConfig
from metricgate.model import Batch
from metricgate.pipeline.component import Consumer, Processor
from metricgate.pipeline.host import Host
from metricgate.pipeline.registry import processor_factory

TYPE = "memory_limiter"


class MemoryLimiterConfig(MemoryLimiterSettings, ComponentConfig):
    """`processors.memory_limiter`: the keys of `service.memory_limiter`."""


class MemoryLimiterProcessor(Processor):
    """Refuses a batch while the service's memory limiter refuses (see module docstring)."""

    def __init__(
        self, component_id: str, config: MemoryLimiterConfig, next_consumer: Consumer
    ) -> None:
        super().__init__(component_id, next_consumer)
        self.config = config
        self._host: Host | None = None

    async def start(self, host: Host) -> None:
        self._host = host

    async def consume(self, batch: Batch) -> None:
        if self._host is not None:
            self._host.memory.check()  # for receivers that did not check before decoding
        await self.next_consumer.consume(batch)


FACTORY = processor_factory(
    TYPE,
    MemoryLimiterConfig,
    MemoryLimiterProcessor,
    "deprecated: use service.memory_limiter (refuses data over memory limits)",
)
