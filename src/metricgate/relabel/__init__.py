"""Prometheus relabeling, shared by every part that relabels: the engine and its rule config.

`RelabelRuleConfig` is one `relabel_configs` entry (Prometheus' keys and checks, plus vmagent's
extensions), `RuleSet` runs a list of them over one label set, `Selector` is vmagent's `if:`
series selector. Users: the `relabel` processor, and the `prometheus` receiver's
`relabel_configs` (targets) and `metric_relabel_configs` (samples).

Invariant: this package is neutral (it imports `metricgate.regex`, `translate` and `config`, never
a component), so components share it.
"""

from metricgate.relabel.config import RelabelRuleConfig
from metricgate.relabel.go_strings import hashmod
from metricgate.relabel.rules import Drop, LabelPairs, RuleSet, Step
from metricgate.relabel.selector import Selector, SelectorError, parse_selector, parse_series

__all__ = [
    "Drop",
    "LabelPairs",
    "RelabelRuleConfig",
    "RuleSet",
    "Selector",
    "SelectorError",
    "Step",
    "hashmod",
    "parse_selector",
    "parse_series",
]
