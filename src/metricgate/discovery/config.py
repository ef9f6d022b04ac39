"""`*_sd_configs`: the service-discovery keys of a Prometheus `scrape_config`, and their builder.

A scrape config model inherits `DiscoveryConfigs`, so every discovery mechanism added here is
accepted by every user of discovery at once.
"""

from __future__ import annotations

from metricgate.config.types import ComponentConfig
from metricgate.discovery.static import StaticConfig, StaticDiscoverer
from metricgate.discovery.targets import Discoverer


class DiscoveryConfigs(ComponentConfig):
    """The `*_sd_configs` lists of one scrape config (Prometheus' key names)."""

    static_configs: list[StaticConfig] = []


def discoverers(configs: DiscoveryConfigs, name: str) -> list[Discoverer]:
    """One discoverer per configured mechanism; `name` (the job) prefixes each group's source."""
    found: list[Discoverer] = []
    if configs.static_configs:
        found.append(StaticDiscoverer(configs.static_configs, f"{name}/static"))
    return found
