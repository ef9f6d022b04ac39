"""The `memory_limiter` processor: deprecated, use `service.memory_limiter`.

`processor` holds the config model, the component and its factory.
"""

from metricgate.processors.memory_limiter.processor import (
    FACTORY,
    MemoryLimiterConfig,
    MemoryLimiterProcessor,
)

__all__ = ["FACTORY", "MemoryLimiterConfig", "MemoryLimiterProcessor"]
