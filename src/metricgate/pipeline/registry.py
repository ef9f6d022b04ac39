"""The registry of component factories, built-in and third-party.

A factory names a component type (`otlp`, `prometheus`), its kind, its config model (defaults and
validation) and a `create` function. Built-in factories are listed in `metricgate.components`,
which also builds the default registry (the pipeline imports no component); plugins register
through the `metricgate.components` entry-point group, whose entries point at a `Factory` object
or at a zero-argument callable returning one or a list of them. `Kind` is defined in
`metricgate.config.components`, so the config loader needs nothing of the pipeline.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from metricgate.config.components import ConfigModel
from metricgate.config.components import Kind as Kind  # part of the plugin API, as before
from metricgate.config.plugins import load_plugins
from metricgate.pipeline.component import Component, Consumer

ENTRY_POINT_GROUP = "metricgate.components"


CreateFn = Callable[[str, Any, Consumer | None], Component]
"""`create(component_id, config, next_consumer)`; exporters get None as next_consumer."""


@dataclass(frozen=True)
class Factory:
    """How to configure and build one component type."""

    type: str
    kind: Kind
    config_model: ConfigModel
    create: CreateFn
    description: str = ""
    stateless: bool = False
    """A processor whose output for a series depends on that series' points alone (relabel,
    filter): under `--workers N` it runs in the worker that received the data, before the
    series are routed to their owners (`metricgate.pipeline.exchange`)."""


def processor_factory(
    type_name: str,
    config_model: ConfigModel,
    build: Callable[[str, Any, Consumer], Component],
    description: str = "",
    *,
    stateless: bool = False,
) -> Factory:
    """The factory of a processor type: `build(component_id, config, next_consumer)` (usually the
    processor class itself) makes one; a processor always has a next consumer. `stateless`: see
    `Factory.stateless` (a third-party processor is assumed to keep state)."""
    factory = _with_next_consumer(Kind.PROCESSOR, type_name, config_model, build, description)
    return replace(factory, stateless=stateless)


def receiver_factory(
    type_name: str,
    config_model: ConfigModel,
    build: Callable[[str, Any, Consumer], Component],
    description: str = "",
) -> Factory:
    """The factory of a receiver type, as `processor_factory`: receivers feed a next consumer."""
    return _with_next_consumer(Kind.RECEIVER, type_name, config_model, build, description)


def exporter_factory(
    type_name: str,
    config_model: ConfigModel,
    build: Callable[[str, Any], Component],
    description: str = "",
) -> Factory:
    """The factory of an exporter type: `build(component_id, config)` makes one."""

    def create(component_id: str, config: Any, _: Consumer | None) -> Component:
        return build(component_id, config)

    return Factory(type_name, Kind.EXPORTER, config_model, create, description)


def _with_next_consumer(
    kind: Kind,
    type_name: str,
    config_model: ConfigModel,
    build: Callable[[str, Any, Consumer], Component],
    description: str,
) -> Factory:
    def create(component_id: str, config: Any, next_consumer: Consumer | None) -> Component:
        if next_consumer is None:
            raise ValueError(f"the {type_name} {kind.value} needs a next consumer")
        return build(component_id, config, next_consumer)

    return Factory(type_name, kind, config_model, create, description)


class Registry:
    """Factories by (kind, type); refuses duplicates so a plugin cannot shadow a built-in."""

    def __init__(self, factories: Iterable[Factory] = ()) -> None:
        self._factories: dict[tuple[Kind, str], Factory] = {}
        for factory in factories:
            self.register(factory)

    def register(self, factory: Factory) -> None:
        key = (factory.kind, factory.type)
        if key in self._factories:
            raise ValueError(f"{factory.kind.value} type {factory.type!r} is already registered")
        self._factories[key] = factory

    def get(self, kind: Kind, type_name: str) -> Factory | None:
        return self._factories.get((kind, type_name))

    def types(self, kind: Kind) -> list[str]:
        return sorted(t for k, t in self._factories if k is kind)

    def __iter__(self) -> Iterator[Factory]:
        return iter(sorted(self._factories.values(), key=lambda f: (f.kind.value, f.type)))

    def load_entry_points(self) -> None:
        """Register third-party factories; a broken plugin is logged and skipped."""
        load_plugins(ENTRY_POINT_GROUP, Factory, self.register)
