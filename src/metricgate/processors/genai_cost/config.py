"""`processors.genai_cost` configuration: which token metrics to read and what tokens cost.

Invariant: a config that validates yields a price table (`GenAICostConfig.price_table()`) without
errors; every problem (an unreadable `prices_file`, a price that is not a non-negative number, a
missing side) is reported at validation time under its key path.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from metricgate.config.types import ComponentConfig, Duration
from metricgate.processors.genai_cost.prices import (
    DEFAULT_PROVIDER_ALIASES,
    ModelPrice,
    PriceTable,
    builtin_prices,
    load_prices_file,
    merge,
)

Source = Literal["auto", "catalog", "genai"]


class GenAICostConfig(ComponentConfig):
    """`processors.genai_cost` (each key documented in docs/components/processors/genai_cost.md)."""

    source: Source = "auto"
    """Token metrics to price: `catalog` (`agent.token.usage`), `genai`
    (`gen_ai.client.token.usage`) or `auto`: both, except that a resource that has sent the
    catalog metric has its gen_ai histogram ignored, so the same tokens are never counted twice."""
    prices: dict[str, dict[str, ModelPrice]] = {}
    """`{provider: {model: {input: USD, output: USD}}}` per million tokens; wins over the rest."""
    prices_file: str | None = None
    """A YAML file of the same shape, merged over the built-in table (inline `prices` win)."""
    builtin_prices: bool = True
    """Start from the built-in table (`genai_cost/prices.yaml`); false: only your prices."""
    default_models: dict[str, str] = {}
    """Provider -> model assumed for a point that names no model (the catalog metric has no
    model label; see the processor docstring for where a model is looked for first)."""
    provider_aliases: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_PROVIDER_ALIASES))
    """Provider names (e.g. `gen_ai.provider.name` values) -> price table provider keys."""
    skip_resources_with_cost: bool = True
    """Leave a resource alone once it sends `agent.cost` itself, so its cost is not doubled."""
    max_staleness: Duration = 3600.0
    """Forget an output cost series (and its inputs' state) not updated for this long; 0 never.
    A forgotten series restarts from 0, which Prometheus reads as a counter reset."""
    unknown_model_log_interval: Duration = 60.0
    """At most one warning listing unpriced models per this interval; 0 disables the log."""

    @field_validator("prices_file")
    @classmethod
    def _check_prices_file(cls, value: str | None) -> str | None:
        if value is not None:
            load_prices_file(value)
        return value

    @field_validator("default_models", "provider_aliases")
    @classmethod
    def _non_empty(cls, value: dict[str, str]) -> dict[str, str]:
        for key, target in value.items():
            if not key or not target:
                raise ValueError(f"expected non-empty names, got {key!r}: {target!r}")
        return value

    def price_table(self) -> PriceTable:
        """Built-in (unless disabled) < `prices_file` < inline `prices`, with the aliases."""
        base = builtin_prices() if self.builtin_prices else {}
        from_file = load_prices_file(self.prices_file) if self.prices_file else {}
        return PriceTable(merge(base, from_file, self.prices), self.provider_aliases)
