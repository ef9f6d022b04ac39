"""Model price tables for the `genai_cost` processor: USD per million input and output tokens.

A table maps provider -> model -> `ModelPrice`. The built-in table (`prices.yaml` beside this
module, dated in its header) is the base; a `prices_file` and inline `prices` are merged over it
model by model. Lookups lower-case provider and model and apply provider aliases
(`gcp.gemini` -> `google`, ...); a model id ending in a release date (`gpt-4o-2024-08-06`,
`claude-sonnet-4-20250514`) falls back to the id without the date.

Invariant: a lookup never guesses. A model is priced only by its own entry or by its dated
snapshot's alias; anything else is unknown (None), and the caller counts it instead of pricing it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Final

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from metricgate.config.errors import format_validation_error

__all__ = [
    "DEFAULT_PROVIDER_ALIASES",
    "ModelPrice",
    "PriceTable",
    "builtin_prices",
    "load_prices_file",
    "merge",
    "parse_prices",
]

TOKENS_PER_PRICE_UNIT: Final = 1_000_000
"""Prices are per million tokens."""

DEFAULT_PROVIDER_ALIASES: Final[Mapping[str, str]] = {
    "gcp.gemini": "google",
    "gcp.vertex_ai": "google",
    "gcp.gen_ai": "google",
    "gemini": "google",
    "vertex_ai": "google",
    "az.ai.openai": "openai",
    "azure.ai.openai": "openai",
    "mistral_ai": "mistral",
}
"""OTel GenAI `gen_ai.provider.name` / `gen_ai.system` values -> price table provider keys."""

_DATE_SUFFIX: Final = re.compile(r"(?:-\d{4}-\d{2}-\d{2}|-\d{8}|@\d{8})$")


class ModelPrice(BaseModel):
    """USD per million tokens; both sides must be given (0 is a valid price)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: float = Field(ge=0, allow_inf_nan=False)
    output: float = Field(ge=0, allow_inf_nan=False)

    def per_token(self, token_type: str) -> float:
        """USD for one token of `token_type` (`input` or `output`)."""
        price = self.input if token_type == "input" else self.output
        return price / TOKENS_PER_PRICE_UNIT


PriceTree = dict[str, dict[str, ModelPrice]]


class _PriceFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    prices: PriceTree


class PriceTable:
    """Merged prices with alias and date-suffix lookup (see module docstring)."""

    def __init__(
        self, tree: Mapping[str, Mapping[str, ModelPrice]], aliases: Mapping[str, str]
    ) -> None:
        self._prices = {
            provider.lower(): {model.lower(): price for model, price in models.items()}
            for provider, models in tree.items()
        }
        self._aliases = {key.lower(): value.lower() for key, value in aliases.items()}

    def provider_key(self, provider: str) -> str:
        """The table key `provider` is priced under (its alias target, lower case)."""
        lowered = provider.lower()
        return self._aliases.get(lowered, lowered)

    def lookup(self, provider: str, model: str) -> ModelPrice | None:
        """The price of `model` at `provider`, or None when the table has no entry for it."""
        models = self._prices.get(self.provider_key(provider))
        if not models or not model:
            return None
        lowered = model.lower()
        found = models.get(lowered)
        if found is None:
            undated = _DATE_SUFFIX.sub("", lowered)
            if undated != lowered:
                found = models.get(undated)
        return found

    def models(self) -> dict[str, list[str]]:
        """Provider -> priced model ids, sorted (for docs and tests)."""
        return {provider: sorted(models) for provider, models in sorted(self._prices.items())}


def parse_prices(raw: Any) -> PriceTree:
    """Validate a `{provider: {model: {input, output}}}` mapping; ValueError lists key paths."""
    try:
        return _PriceFile.model_validate({"prices": raw}).prices
    except ValidationError as exc:
        lines = format_validation_error(exc, "")
        raise ValueError("; ".join(line.removeprefix("prices.") for line in lines)) from None


def load_prices_file(path: str | Path) -> PriceTree:
    """Read and validate a price YAML file; ValueError names the file and the bad key."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read {str(path)!r}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{str(path)!r} is not valid YAML: {exc}") from None
    try:
        return parse_prices(raw if raw is not None else {})
    except ValueError as exc:
        raise ValueError(f"in {str(path)!r}: {exc}") from None


def builtin_prices() -> PriceTree:
    """The built-in table shipped as `prices.yaml` (see its header for date and sources)."""
    text = (
        resources.files("metricgate.processors.genai_cost")
        .joinpath("prices.yaml")
        .read_text("utf-8")
    )
    return parse_prices(yaml.safe_load(text))


def merge(*trees: Mapping[str, Mapping[str, ModelPrice]]) -> PriceTree:
    """Later trees win, model by model; provider keys are compared lower case."""
    out: PriceTree = {}
    for tree in trees:
        for provider, models in tree.items():
            target = out.setdefault(provider.lower(), {})
            for model, price in models.items():
                target[model.lower()] = price
    return out
