"""`static_configs`: targets written in the config itself."""

from __future__ import annotations

from pydantic import field_validator

from metricgate.config.types import ComponentConfig
from metricgate.discovery.targets import Discoverer, SendGroups, TargetGroup


class StaticConfig(ComponentConfig):
    """One `static_configs` entry: `targets` (`host:port` each) and labels they all get."""

    targets: list[str] = []
    labels: dict[str, str] = {}

    @field_validator("targets")
    @classmethod
    def _addresses(cls, targets: list[str]) -> list[str]:
        for target in targets:
            if not target or "/" in target or target.strip() != target:
                raise ValueError(f"expected host:port targets, got {target!r}")
        return targets


class StaticDiscoverer(Discoverer):
    """Sends its configured groups once; static targets never change while running."""

    def __init__(self, configs: list[StaticConfig], name: str = "static") -> None:
        self.groups = [
            TargetGroup(
                source=f"{name}/{index}",
                targets=tuple({"__address__": target} for target in config.targets),
                labels=dict(config.labels),
            )
            for index, config in enumerate(configs)
        ]

    async def run(self, send: SendGroups) -> None:
        send(list(self.groups))
