"""Third-party factories from Python entry points, for the component and extension registries.

An entry point of a registry's group may name a factory, a list or tuple of factories, or a
callable returning either. Both registries (`metricgate.pipeline.registry`,
`metricgate.extensions.registry`) load their group through `load_plugins`.

Invariant: a broken plugin (it does not import, raises, or yields something that is not a
factory) is logged and skipped; it never stops the gateway from starting.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import TypeVar

__all__ = ["load_plugins"]

log = logging.getLogger(__name__)

_F = TypeVar("_F")


def load_plugins(group: str, factory_type: type[_F], register: Callable[[_F], None]) -> None:
    """`register` every `factory_type` the entry points of `group` provide."""
    for entry in entry_points(group=group):
        try:
            loaded = entry.load()
            produced = (
                loaded() if callable(loaded) and not isinstance(loaded, factory_type) else loaded
            )
            for factory in produced if isinstance(produced, list | tuple) else [produced]:
                if not isinstance(factory, factory_type):
                    raise TypeError(
                        f"expected a metricgate {factory_type.__name__}, got {factory!r}"
                    )
                register(factory)
        except Exception as exc:
            log.error("plugin %s (%s) could not be loaded: %s", entry.name, entry.value, exc)
