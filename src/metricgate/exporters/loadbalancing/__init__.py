"""The `loadbalancing` exporter: each series to one of N metricgate (or Collector) members.

`config.py` holds the config model, `ring.py` the consistent-hash ring, `routing.py` the routing
keys, `resolver.py` the static and DNS member lists, and `exporter.py` the component, which sends
each member's part through its own `otlp` exporter. Invariant: while the members do not change, a
routing key always reaches the same member, from any front instance.
"""

from metricgate.exporters.loadbalancing.config import LoadBalancingExporterConfig
from metricgate.exporters.loadbalancing.exporter import FACTORY, LoadBalancingExporter
from metricgate.exporters.loadbalancing.resolver import DnsResolver, StaticResolver
from metricgate.exporters.loadbalancing.ring import HashRing

__all__ = [
    "FACTORY",
    "DnsResolver",
    "HashRing",
    "LoadBalancingExporter",
    "LoadBalancingExporterConfig",
    "StaticResolver",
]
