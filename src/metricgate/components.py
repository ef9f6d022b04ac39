"""The built-in component factories, one line each; plugins add theirs via entry points."""

from __future__ import annotations

from metricgate.exporters import debug
from metricgate.pipeline.registry import Factory
from metricgate.processors import memory_limiter

BUILTIN_FACTORIES: list[Factory] = [
    debug.FACTORY,
    memory_limiter.FACTORY,
]
