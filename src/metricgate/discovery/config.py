"""`*_sd_configs`: the service-discovery keys of a Prometheus `scrape_config`, and their builder.

A scrape config model inherits `DiscoveryConfigs`, so every discovery mechanism added here is
accepted by every user of discovery at once.

Invariant: each configured entry becomes exactly one discoverer, whose group sources start with
`<name>/<mechanism>/<index>/` (static: `<name>/static/<index>`), so no two entries share a source.
"""

from __future__ import annotations

from metricgate.config.types import ComponentConfig
from metricgate.discovery.dns import DnsDiscoverer, DnsSDConfig
from metricgate.discovery.file import FileDiscoverer, FileSDConfig
from metricgate.discovery.http import HttpDiscoverer, HttpSDConfig
from metricgate.discovery.kubernetes import KubernetesDiscoverer, KubernetesSDConfig
from metricgate.discovery.static import StaticConfig, StaticDiscoverer
from metricgate.discovery.targets import Discoverer, OnRefresh, ignore_refresh


class DiscoveryConfigs(ComponentConfig):
    """The `*_sd_configs` lists of one scrape config (Prometheus' key names)."""

    static_configs: list[StaticConfig] = []
    file_sd_configs: list[FileSDConfig] = []
    http_sd_configs: list[HttpSDConfig] = []
    dns_sd_configs: list[DnsSDConfig] = []
    kubernetes_sd_configs: list[KubernetesSDConfig] = []


def discoverers(
    configs: DiscoveryConfigs, name: str, on_refresh: OnRefresh = ignore_refresh
) -> list[Discoverer]:
    """One discoverer per configured entry; `name` (the job) prefixes each group's source.

    `on_refresh(mechanism, failed)` is called after every refresh of every discoverer (see
    `OnRefresh`): the receiver counts refreshes and failures per mechanism from it.
    """
    found: list[Discoverer] = []
    if configs.static_configs:
        found.append(StaticDiscoverer(configs.static_configs, f"{name}/static", on_refresh))
    for index, file_config in enumerate(configs.file_sd_configs):
        found.append(FileDiscoverer(file_config, f"{name}/file/{index}", on_refresh))
    for index, http_config in enumerate(configs.http_sd_configs):
        found.append(HttpDiscoverer(http_config, f"{name}/http/{index}", on_refresh))
    for index, dns_config in enumerate(configs.dns_sd_configs):
        found.append(DnsDiscoverer(dns_config, f"{name}/dns/{index}", on_refresh))
    for index, kube_config in enumerate(configs.kubernetes_sd_configs):
        found.append(KubernetesDiscoverer(kube_config, f"{name}/kubernetes/{index}", on_refresh))
    return found
