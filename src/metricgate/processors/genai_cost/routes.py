"""Where a token series' cost goes: the output `agent.cost` series and the price per token.

Two inputs are understood:
- the catalog counter `agent.token.usage` (monotonic sum; attributes agent_id, agent_type,
  provider, token_type). The catalog has no model label, so the model is the first of the point
  attributes `model`, `gen_ai.response.model`, `gen_ai.request.model`, then the same resource
  attributes, then `default_models[provider]`.
- the OTel GenAI histogram `gen_ai.client.token.usage` (its sum is the token count). provider is
  `gen_ai.provider.name` (or the older `gen_ai.system`); model is `gen_ai.response.model`, else
  `gen_ai.request.model`, else `default_models`; token type is `gen_ai.token.type`. agent_type
  is `gen_ai.agent.name` (point, then resource), else the resource's `service.name`; agent_id is
  `gen_ai.agent.id`, else `service.instance.id`, else the agent_type.
Only token types `input` and `output` are priced (GenAI's older `prompt`/`completion` map to them);
`total` and anything else is skipped, never priced.

Invariant: a route depends only on the input Series (its attributes, metric and resource) and the
config, so it is computed once per Series and cached; the output Series is interned on the
`agent.cost` descriptor of the input's own resource, so `job`/`instance` match the token series.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from metricgate import __version__
from metricgate.model import (
    INTERNER,
    AttributeValue,
    Metric,
    MetricKind,
    Resource,
    Series,
    Temporality,
    sorted_attributes,
)
from metricgate.processors.genai_cost.prices import PriceTable

CATALOG_METRIC: Final = "agent.token.usage"
GENAI_METRIC: Final = "gen_ai.client.token.usage"
COST_METRIC: Final = "agent.cost"
COST_UNIT: Final = "{USD}"
COST_DESCRIPTION: Final = "Money spent on model providers, in US dollars."
SCOPE_NAME: Final = "metricgate.genai_cost"
"""Instrumentation scope of the produced series (their `otel_scope_name` label)."""

UNKNOWN: Final = "unknown"
NO_MODEL: Final = "unset"
"""The `model` label of an unpriced point that names no model."""

_TOKEN_TYPES: Final[Mapping[str, str]] = {
    "input": "input",
    "output": "output",
    "prompt": "input",
    "completion": "output",
}
_CATALOG_MODEL_KEYS: Final[tuple[str, ...]] = (
    "model",
    "gen_ai.response.model",
    "gen_ai.request.model",
)
_GENAI_MODEL_KEYS: Final[tuple[str, ...]] = ("gen_ai.response.model", "gen_ai.request.model")


class SourceKind(enum.Enum):
    """Which of the two token metrics a group is."""

    CATALOG = "catalog"
    GENAI = "genai"
    COST = "cost"
    """`agent.cost` recorded by the program itself (not by this processor)."""


def source_of(metric: Metric) -> SourceKind | None:
    """Which token (or cost) metric `metric` is, or None for everything else."""
    if metric.native_prometheus:
        return None
    if metric.name == CATALOG_METRIC and metric.is_counter:
        return SourceKind.CATALOG
    if metric.name == GENAI_METRIC and metric.kind is MetricKind.HISTOGRAM:
        return SourceKind.GENAI
    if metric.name == COST_METRIC and metric.scope.name != SCOPE_NAME:
        return SourceKind.COST
    return None


@dataclass(frozen=True, slots=True)
class Route:
    """Priced: add tokens x `per_token` USD to `output`."""

    output: Series
    per_token: float


@dataclass(frozen=True, slots=True)
class Unpriced:
    """An input or output token series whose model has no price: counted, never guessed."""

    provider: str
    model: str


class Router:
    """Computes the route of an input series (see module docstring); the caller caches it."""

    def __init__(self, table: PriceTable, default_models: Mapping[str, str]) -> None:
        self._table = table
        self._default_models = {table.provider_key(p): m for p, m in default_models.items()}
        self._scope = INTERNER.intern_scope(SCOPE_NAME, __version__)
        self._metrics: dict[Resource, Metric] = {}

    def route(self, series: Series, kind: SourceKind) -> Route | Unpriced | None:
        """None when the point is not priced at all (token type `total`, or none)."""
        attributes = dict(series.attributes)
        resource = series.metric.resource
        if kind is SourceKind.CATALOG:
            token_key, model_keys = "token_type", _CATALOG_MODEL_KEYS
            provider = _text(attributes.get("provider"))
            agent_type = _text(attributes.get("agent_type"))
            agent_id = _text(attributes.get("agent_id"))
        else:
            token_key, model_keys = "gen_ai.token.type", _GENAI_MODEL_KEYS
            provider = _text(
                attributes.get("gen_ai.provider.name") or attributes.get("gen_ai.system")
            )
            agent_type = _first(attributes, resource, ("gen_ai.agent.name",)) or _text(
                resource.get("service.name")
            )
            agent_id = (
                _first(attributes, resource, ("gen_ai.agent.id",))
                or _text(resource.get("service.instance.id"))
                or agent_type
            )
        token_type = _TOKEN_TYPES.get(_text(attributes.get(token_key)))
        if token_type is None:
            return None
        provider_key = self._table.provider_key(provider) if provider else ""
        model = _first(attributes, resource, model_keys) or self._default_models.get(
            provider_key, ""
        )
        price = self._table.lookup(provider, model) if provider else None
        if price is None:
            return Unpriced(provider or UNKNOWN, model or NO_MODEL)
        if kind is SourceKind.GENAI:
            provider = provider_key
        labels: dict[str, AttributeValue] = {
            "agent_id": agent_id or UNKNOWN,
            "agent_type": agent_type or UNKNOWN,
            "provider": provider,
        }
        output = INTERNER.intern_series(self._metric(resource), sorted_attributes(labels))
        return Route(output, price.per_token(token_type))

    def _metric(self, resource: Resource) -> Metric:
        metric = self._metrics.get(resource)
        if metric is None:
            if len(self._metrics) >= 1 << 16:
                self._metrics.clear()
            metric = self._metrics[resource] = INTERNER.intern_metric(
                resource,
                self._scope,
                COST_METRIC,
                COST_UNIT,
                MetricKind.SUM,
                Temporality.CUMULATIVE,
                True,
                COST_DESCRIPTION,
            )
        return metric


def _text(value: AttributeValue) -> str:
    return value if isinstance(value, str) else ""


def _first(
    attributes: Mapping[str, AttributeValue], resource: Resource, keys: tuple[str, ...]
) -> str:
    for key in keys:
        found = _text(attributes.get(key))
        if found:
            return found
    for key in keys:
        found = _text(resource.get(key))
        if found:
            return found
    return ""
