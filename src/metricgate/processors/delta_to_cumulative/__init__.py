"""The `delta_to_cumulative` processor: turn delta sums and histograms into cumulative ones.

`processor` holds the config model, the component and its factory.
"""

from metricgate.processors.delta_to_cumulative.processor import (
    FACTORY,
    DeltaToCumulativeConfig,
    DeltaToCumulativeProcessor,
)

__all__ = ["FACTORY", "DeltaToCumulativeConfig", "DeltaToCumulativeProcessor"]
