"""The `cumulative_to_delta` processor: turn cumulative monotonic sums and histograms into deltas.

`processor` holds the config model, the component and its factory.
"""

from metricgate.processors.cumulative_to_delta.processor import (
    FACTORY,
    CumulativeToDeltaConfig,
    CumulativeToDeltaProcessor,
)

__all__ = ["FACTORY", "CumulativeToDeltaConfig", "CumulativeToDeltaProcessor"]
