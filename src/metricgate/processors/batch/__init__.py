"""The `batch` processor: gather incoming batches and forward fewer, larger ones.

`processor` holds the config model, the component and its factory.
"""

from metricgate.processors.batch.processor import FACTORY, BatchConfig, BatchProcessor

__all__ = ["FACTORY", "BatchConfig", "BatchProcessor"]
