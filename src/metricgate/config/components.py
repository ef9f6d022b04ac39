"""What the config loader knows of component types: their kinds, and the lookup it is handed.

The registry of factories (`metricgate.pipeline.registry`) sits above `config`: the loader
validates each component's block against the `ComponentTypes` its caller passes (the registry),
and keeps the `ComponentType` it found on the `ComponentSpec`; the service later asks that type to
`create` the component.

Invariant: nothing here imports the pipeline; `pipeline.registry.Factory` and `Registry` satisfy
these protocols as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from metricgate.config.types import ComponentConfig

ConfigModel = type[ComponentConfig]


class Kind(StrEnum):
    """The three kinds of component, each under its own top-level config key."""

    RECEIVER = "receiver"
    PROCESSOR = "processor"
    EXPORTER = "exporter"

    @property
    def section(self) -> str:
        """The top-level config key holding components of this kind."""
        return f"{self.value}s"


class ComponentType(Protocol):
    """One component type as the loader sees it (a `pipeline.registry.Factory`)."""

    @property
    def type(self) -> str: ...

    @property
    def kind(self) -> Kind: ...

    @property
    def config_model(self) -> ConfigModel: ...

    def create(self, component_id: str, config: Any, next_consumer: Any, /) -> object:
        """The component built from a validated config (the service checks its class)."""
        ...


class ComponentTypes(Protocol):
    """The component types a config may use, by kind (a `pipeline.registry.Registry`)."""

    def get(self, kind: Kind, type_name: str) -> ComponentType | None: ...

    def types(self, kind: Kind) -> list[str]: ...


@dataclass(frozen=True)
class ComponentSpec:
    """A configured component: its id, factory and validated config."""

    id: str
    kind: Kind
    factory: ComponentType
    config: ComponentConfig
