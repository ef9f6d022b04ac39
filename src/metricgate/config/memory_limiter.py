"""`service.memory_limiter`: the settings of the process-wide memory limiter.

The Collector's `memory_limiter` keys, plus its GC intervals. The deprecated `memory_limiter`
processor takes the same keys (its config model extends this one), so a processor config moves to
`service.memory_limiter` unchanged; `from_processors` does that move when a config is loaded.

Invariant: a validated model has a positive hard limit (in MiB or as a percentage) and a spike
below it, so `limits()` always returns `0 < soft < hard`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pydantic import BaseModel, ConfigDict, Field, model_validator

from metricgate.config.components import ComponentSpec
from metricgate.config.types import Duration

MIB = 1024 * 1024


class MemoryLimiterSettings(BaseModel):
    """When the gateway refuses new data because the process uses too much memory."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    check_interval: Duration = 1.0
    """How often memory use is measured."""
    limit_mib: int = Field(default=0, ge=0)
    """Hard limit in MiB; 0 means use `limit_percentage`."""
    spike_limit_mib: int = Field(default=0, ge=0)
    """Headroom below the hard limit; soft limit = limit - spike. 0 means 20% of the limit."""
    limit_percentage: int = Field(default=0, ge=0, le=100)
    spike_limit_percentage: int = Field(default=0, ge=0, le=100)
    retry_after: Duration = 1.0
    """Seconds clients are told to wait (Retry-After) while refused."""
    min_gc_interval_when_soft_limited: Duration = 10.0
    """Least time between two releases (caches emptied, garbage collected, freed memory handed
    back to the system) while over the soft limit."""
    min_gc_interval_when_hard_limited: Duration = 0.0
    """The same over the hard limit (0: at every check)."""

    @model_validator(mode="after")
    def _check_limits(self) -> MemoryLimiterSettings:
        if not self.limit_mib and not self.limit_percentage:
            raise ValueError("expected limit_mib or limit_percentage to be set")
        if self.limit_mib and self.spike_limit_mib >= self.limit_mib:
            raise ValueError(
                f"expected spike_limit_mib < limit_mib, got {self.spike_limit_mib} >= "
                f"{self.limit_mib}"
            )
        spike = self.spike_limit_percentage
        if not self.limit_mib and spike and spike >= self.limit_percentage:
            raise ValueError(
                "expected spike_limit_percentage < limit_percentage, got "
                f"{spike} >= {self.limit_percentage}"
            )
        if self.check_interval <= 0:
            raise ValueError("expected check_interval > 0")
        return self

    def limits(self, total: int) -> tuple[int, int]:
        """(soft, hard) limits in bytes; `total` is the memory percentages are taken of."""
        if self.limit_mib:
            hard = self.limit_mib * MIB
            spike = self.spike_limit_mib * MIB or hard // 5
        else:
            hard = total * self.limit_percentage // 100
            spike = total * self.spike_limit_percentage // 100 or hard // 5
        return hard - spike, hard

    def settings(self) -> MemoryLimiterSettings:
        """These settings as the service-level model (drops a subclass's identity)."""
        return MemoryLimiterSettings.model_validate(
            self.model_dump(include=set(MemoryLimiterSettings.model_fields))
        )


_MEMORY_LIMITER_PROCESSOR = "memory_limiter"


def from_processors(
    listed: Iterable[str],
    processors: Mapping[str, ComponentSpec],
    current: MemoryLimiterSettings | None,
    problems: list[str],
    warnings: list[str],
) -> MemoryLimiterSettings | None:
    """`service.memory_limiter` once the deprecated `memory_limiter` processors are mapped onto it
    (`current` when there are none); `listed` are the processor ids used in pipelines.

    The limit is one per process: processors listed in pipelines must agree on their settings;
    `service.memory_limiter`, when set, wins over them.
    """
    used = dict.fromkeys(listed)
    forms = {
        component_id: spec.config
        for component_id, spec in processors.items()
        if component_id in used and spec.factory.type == _MEMORY_LIMITER_PROCESSOR
    }
    if not forms:
        return current
    ids = ", ".join(f"processors.{component_id}" for component_id in forms)
    if current is not None:
        warnings.append(
            f"{ids}: deprecated and ignored: service.memory_limiter is set and applies to the "
            "whole process; remove the processor from the pipelines"
        )
        return current
    settings = {
        component_id: config.settings()
        for component_id, config in forms.items()
        if isinstance(config, MemoryLimiterSettings)
    }
    first_id, first = next(iter(settings.items()))
    for component_id, other in settings.items():
        if other != first:
            problems.append(
                f"processors.{component_id}: settings differ from processors.{first_id}; memory "
                "is limited once per process: set service.memory_limiter instead"
            )
            return current
    warnings.append(
        f"{ids}: the memory_limiter processor is deprecated; it limits the whole process, so "
        "its settings now belong under service.memory_limiter (applied from there as they are)"
    )
    return first
