"""Service discovery: where scrape targets (and other peers) come from, in Prometheus' terms.

A `Discoverer` watches one source (a static list, files, an HTTP endpoint, DNS, the Kubernetes API)
and reports `TargetGroup`s: each target is a label set holding at least `__address__`, plus the
`__meta_*` labels Prometheus documents for that mechanism, so users' `relabel_configs` carry over.
`DiscoveryConfigs` holds the `*_sd_configs` keys of a Prometheus `scrape_config`, and
`discoverers()` builds one discoverer per configured entry, reporting each refresh through an
`OnRefresh` callback for telemetry.

Modules: `targets.py` the contract, `config.py` the keys and the builder, one module per mechanism
(`static.py`, `file.py`, `http.py`, `dns.py`, `kubernetes/`), `refresh.py` what the polling ones
share, `client.py` the HTTP client of the HTTP-based ones.

Invariant: this package is neutral (it imports only `config`, `translate` and lower layers); the
scrape receiver and any other component may use it, it never imports a component.
"""

from metricgate.discovery.config import DiscoveryConfigs, discoverers
from metricgate.discovery.dns import DnsDiscoverer, DnsSDConfig
from metricgate.discovery.file import FileDiscoverer, FileSDConfig
from metricgate.discovery.http import HttpDiscoverer, HttpSDConfig
from metricgate.discovery.kubernetes import KubernetesDiscoverer, KubernetesSDConfig
from metricgate.discovery.static import StaticConfig, StaticDiscoverer
from metricgate.discovery.targets import (
    Discoverer,
    Labels,
    OnRefresh,
    SendGroups,
    TargetGroup,
    ignore_refresh,
    join_host_port,
)

__all__ = [
    "Discoverer",
    "DiscoveryConfigs",
    "DnsDiscoverer",
    "DnsSDConfig",
    "FileDiscoverer",
    "FileSDConfig",
    "HttpDiscoverer",
    "HttpSDConfig",
    "KubernetesDiscoverer",
    "KubernetesSDConfig",
    "Labels",
    "OnRefresh",
    "SendGroups",
    "StaticConfig",
    "StaticDiscoverer",
    "TargetGroup",
    "discoverers",
    "ignore_refresh",
    "join_host_port",
]
