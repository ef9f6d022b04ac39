"""The `relabel` processor: Prometheus `relabel_configs` (and vmagent's extensions) on every series.

`config` holds the config models, `rules` the engine (its regexes are `metricgate.regex`'s, Go's
syntax matched by RE2), `selector` the `if:` series selectors, `processor` the component and `cli`
the `metricgate relabel-test` command.
"""

from metricgate.processors.relabel.config import RelabelConfig, RelabelRuleConfig
from metricgate.processors.relabel.processor import FACTORY, RelabelProcessor
from metricgate.processors.relabel.rules import Drop, RuleSet, Step, hashmod
from metricgate.processors.relabel.selector import Selector, parse_selector, parse_series
from metricgate.regex import GoRegex, RegexError

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
