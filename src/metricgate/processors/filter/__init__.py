"""The `filter` processor: keep or drop data points by metric name, type and attributes.

`processor` holds the config model, the component and its factory.
"""

from metricgate.processors.filter.processor import FACTORY, FilterConfig, FilterProcessor

__all__ = ["FACTORY", "FilterConfig", "FilterProcessor"]
