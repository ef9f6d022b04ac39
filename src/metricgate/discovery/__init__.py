"""Service discovery: where scrape targets (and other peers) come from, in Prometheus' terms.

A `Discoverer` watches one source (a static list, files, an HTTP endpoint, DNS, the Kubernetes API)
and reports `TargetGroup`s: each target is a label set holding at least `__address__`, plus the
`__meta_*` labels Prometheus documents for that mechanism, so users' `relabel_configs` carry over.
`DiscoveryConfigs` holds the `*_sd_configs` keys of a Prometheus `scrape_config`, and
`discoverers()` builds one discoverer per configured entry.

Invariant: this package is neutral (it imports only `config` and lower layers); the scrape receiver
and any other component may use it, it never imports a component.
"""

from metricgate.discovery.config import DiscoveryConfigs, discoverers
from metricgate.discovery.static import StaticConfig, StaticDiscoverer
from metricgate.discovery.targets import Discoverer, Labels, SendGroups, TargetGroup

__all__ = [
    "Discoverer",
    "DiscoveryConfigs",
    "Labels",
    "SendGroups",
    "StaticConfig",
    "StaticDiscoverer",
    "TargetGroup",
    "discoverers",
]
