"""The `aggregate` processor: vmagent-compatible stream aggregation (see `processor`)."""

from metricgate.processors.aggregate.config import AggregateConfig, AggregateRuleConfig
from metricgate.processors.aggregate.outputs import Output, OutputKind, parse_output
from metricgate.processors.aggregate.processor import FACTORY, AggregateProcessor

__all__ = [
    "FACTORY",
    "AggregateConfig",
    "AggregateProcessor",
    "AggregateRuleConfig",
    "Output",
    "OutputKind",
    "parse_output",
]
