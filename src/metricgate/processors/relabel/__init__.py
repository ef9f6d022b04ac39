"""The `relabel` processor: Prometheus `relabel_configs` (and vmagent's extensions) on every series.

`config` holds the processor's config, `processor` the component and `cli` the
`metricgate relabel-test` command. The engine (`rules`, the rule config, `selector`) is the neutral
`metricgate.relabel`, shared with the `prometheus` receiver; Go's regexes are `metricgate.regex`.
"""

from metricgate.processors.relabel.config import RelabelConfig
from metricgate.processors.relabel.processor import FACTORY, RelabelProcessor
from metricgate.regex import GoRegex, RegexError
from metricgate.relabel.config import RelabelRuleConfig
from metricgate.relabel.rules import Drop, RuleSet, Step, hashmod
from metricgate.relabel.selector import Selector, parse_selector, parse_series

__all__ = [
    "FACTORY",
    "Drop",
    "GoRegex",
    "RegexError",
    "RelabelConfig",
    "RelabelProcessor",
    "RelabelRuleConfig",
    "RuleSet",
    "Selector",
    "Step",
    "hashmod",
    "parse_selector",
    "parse_series",
]
