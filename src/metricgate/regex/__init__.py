"""Go's regular expressions for every user-written pattern: RE2 syntax, RE2 matching.

Prometheus, vmagent and the OpenTelemetry Collector read user patterns with Go's `regexp`: relabel
rules, series selectors, the filter and attributes processors' `regexp` matchers, CloudWatch's
metric name selectors. `GoRegex` gives all of them Go's syntax and semantics and Google's RE2
engine, whose matching time is linear in the text, so no pattern can stall the event loop.

`syntax` parses Go's syntax and emits an equivalent RE2 pattern, `charclass` builds Go's character
classes as explicit ranges, `pattern` holds `GoRegex` (matching, `Expand`, `ReplaceAll`).

Invariant: this package imports nothing else from metricgate, and a user's pattern is never
compiled by Python's backtracking `re`.
"""

from metricgate.regex.pattern import Expander, GoMatch, GoRegex, RegexError

__all__ = ["Expander", "GoMatch", "GoRegex", "RegexError"]
