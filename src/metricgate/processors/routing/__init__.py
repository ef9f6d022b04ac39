"""The `routing` processor: per-tenant routes to exporters, with a default route.

`config` holds the YAML keys (the Collector's routing processor shape, and why not its
connector), `processor` the component.

Invariant: each point reaches the exporters of exactly one route, or is counted as dropped.
"""

from metricgate.processors.routing.config import Route, RoutingConfig
from metricgate.processors.routing.processor import FACTORY, RoutingProcessor

__all__ = ["FACTORY", "Route", "RoutingConfig", "RoutingProcessor"]
