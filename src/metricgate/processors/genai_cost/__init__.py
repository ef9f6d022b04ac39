"""The `genai_cost` processor: turn LLM token metrics into the catalog's `agent.cost` (USD).

`processor` holds the component, `routes` which token series cost what and where it goes,
`prices` the price tables (built-in `prices.yaml`, dated), `config` the YAML keys.

Invariant: input data passes through unchanged; cost is only ever added as new series.
"""

from metricgate.processors.genai_cost.config import GenAICostConfig
from metricgate.processors.genai_cost.prices import ModelPrice, PriceTable, builtin_prices
from metricgate.processors.genai_cost.processor import FACTORY, GenAICostProcessor

__all__ = [
    "FACTORY",
    "GenAICostConfig",
    "GenAICostProcessor",
    "ModelPrice",
    "PriceTable",
    "builtin_prices",
]
