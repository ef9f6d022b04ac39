"""The `attributes` processor: insert, update, upsert, delete, hash, extract or convert data point
attributes (the Collector's attributes processor; actions in `metricgate.processing.actions`).

`processor` holds the config model, the component and its factory.
"""

from metricgate.processors.attributes.processor import (
    FACTORY,
    AttributesConfig,
    AttributesProcessor,
)

__all__ = ["FACTORY", "AttributesConfig", "AttributesProcessor"]
