"""The `resource` processor: insert, update, upsert, delete, hash, extract or convert resource
attributes (the Collector's resource processor; actions in `metricgate.processing.actions`).

`processor` holds the config model, the component and its factory.
"""

from metricgate.processors.resource.processor import FACTORY, ResourceConfig, ResourceProcessor

__all__ = ["FACTORY", "ResourceConfig", "ResourceProcessor"]
