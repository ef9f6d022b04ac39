"""Config of the `relabel` processor: its rules (`metricgate.relabel.config`) and cache size.

Invariant: a config that validates compiles into a `RuleSet` without error.
"""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_core import InitErrorDetails, ValidationError

from metricgate.config.types import ComponentConfig
from metricgate.relabel.config import RelabelRuleConfig, fail_at


class RelabelConfig(ComponentConfig):
    """`processors.relabel`: the rules, and how many per-series verdicts to remember."""

    relabel_configs: list[RelabelRuleConfig] = []
    metric_relabel_configs: list[RelabelRuleConfig] = []
    """Accepted as another name for `relabel_configs`, so Prometheus scrape configs paste as-is."""
    max_cached_series: int = Field(default=1_000_000, ge=1)
    """Per-series verdicts kept; past this the cache starts over. Roughly 0.5-1 kB per series."""

    @model_validator(mode="after")
    def _one_list(self) -> RelabelConfig:
        # A relabel processor without rules is a config mistake (a forgotten or misspelled key),
        # not a pass-through; an explicit `relabel_configs: []` is allowed.
        if not {"relabel_configs", "metric_relabel_configs"} & self.model_fields_set:
            raise ValidationError.from_exception_data(
                "config",
                [InitErrorDetails(type="missing", loc=("relabel_configs",), input=None)],
            )
        if self.relabel_configs and self.metric_relabel_configs:
            fail_at(
                "metric_relabel_configs",
                "give either relabel_configs or metric_relabel_configs, not both",
                None,
            )
        return self

    @property
    def rules(self) -> list[RelabelRuleConfig]:
        return self.relabel_configs or self.metric_relabel_configs
