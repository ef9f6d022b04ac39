"""OTLP metric name and unit -> Prometheus metric name (underscore escaping, optional suffixes).

Implements steps 1-6 of reference/prometheus-translation.md, which follows the OpenTelemetry
"Prometheus and OpenMetrics compatibility" specification and `prometheus/otlptranslator`:

1. The name is split into tokens at every character outside `[A-Za-z0-9:]`; runs of such
   characters (underscores included) collapse, so `a.._b` -> `a_b`.
2. The unit is split at its first `/`. Each part is stripped of surrounding whitespace and dropped
   if it contains `{` or `}` (an annotation such as `{packets}` is no unit). The main part goes
   through `UNIT_WORDS` and the per-unit part through `PER_UNIT_WORDS` (prefixed `per`); a unit
   neither table knows is used as written, tokenised like the name. A unit suffix is appended only
   if its token sequence does not already occur in the name, so `bytes_total` in `By` stays
   `bytes_total` and `requests_per_second` in `1/s` does not become `..._per_second_per_second`
   (otlptranslator only ever compares single tokens, so it does repeat a per-unit suffix).
3. `counter=True` (monotonic cumulative sum): every `total` token is removed and one appended.
4. `gauge=True` with unit `1`: every `ratio` token is removed and one appended. A counter in `1`
   gets no `ratio`; a histogram or summary (both flags False) gets neither suffix.
5. The namespace, tokenised the same way, is prefixed; a result starting with a digit gets `_`.
6. A name with no valid token at all (empty, `@_#_$_%`, only underscores) raises
   `InvalidMetricNameError`, even when a namespace or unit would make the result non-empty: such a
   name would otherwise collide with every other unnameable metric.

`add_suffixes=False` keeps steps 1, 5 and 6 only (no unit, `total` or `ratio` suffix).

Invariant: `prometheus_metric_name` returns a string matching `METRIC_NAME_RE` or raises
`InvalidMetricNameError`; it raises nothing else for any `name`, `unit` or `namespace` string.
It is pure and not cached: callers translate once per new metric and keep the answer.
"""

from __future__ import annotations

import re
from typing import Final

from metricgate.model.caches import BoundedTable

__all__ = [
    "LABEL_NAME_RE",
    "METRIC_NAME_RE",
    "PER_UNIT_WORDS",
    "UNIT_WORDS",
    "InvalidMetricNameError",
    "is_label_name",
    "is_metric_name",
    "prometheus_metric_name",
]

# `\Z`, not `$`: `$` also matches before a trailing newline, which no valid name may contain.
METRIC_NAME_RE: Final = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
"""A valid Prometheus metric name (legacy character set)."""

LABEL_NAME_RE: Final = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*\Z")
"""A valid Prometheus label name (legacy character set)."""

_CHECKED: Final[BoundedTable[tuple[str, bool], bool]] = BoundedTable(100_000)
"""(name, as a metric name) -> valid: names repeat across series, so each is matched once."""
_checked: Final = _CHECKED.entries


def is_label_name(name: str) -> bool:
    """`LABEL_NAME_RE` matches `name` (remembered: for hot paths that see names again)."""
    found = _checked.get((name, False))
    if found is None:
        found = _remember(name, False, LABEL_NAME_RE.match(name) is not None)
    return found


def is_metric_name(name: str) -> bool:
    """`METRIC_NAME_RE` matches `name` (remembered, as `is_label_name`)."""
    found = _checked.get((name, True))
    if found is None:
        found = _remember(name, True, METRIC_NAME_RE.match(name) is not None)
    return found


def _remember(name: str, metric: bool, valid: bool) -> bool:
    return _CHECKED.put((name, metric), valid)


UNIT_WORDS: Final[dict[str, str]] = {
    # Time
    "d": "days",
    "h": "hours",
    "min": "minutes",
    "s": "seconds",
    "ms": "milliseconds",
    "us": "microseconds",
    "ns": "nanoseconds",
    # Bytes
    "By": "bytes",
    "KiBy": "kibibytes",
    "MiBy": "mebibytes",
    "GiBy": "gibibytes",
    "TiBy": "tebibytes",
    "KBy": "kilobytes",
    "MBy": "megabytes",
    "GBy": "gigabytes",
    "TBy": "terabytes",
    # SI
    "m": "meters",
    "V": "volts",
    "A": "amperes",
    "J": "joules",
    "W": "watts",
    "g": "grams",
    # Misc
    "Cel": "celsius",
    "Hz": "hertz",
    "%": "percent",
    "1": "",
}
"""UCUM main unit -> the Prometheus suffix word (`1` is dimensionless: no word)."""

PER_UNIT_WORDS: Final[dict[str, str]] = {
    "s": "second",
    "m": "minute",
    "h": "hour",
    "d": "day",
    "w": "week",
    "mo": "month",
    "y": "year",
}
"""UCUM unit after `/` -> the singular word that follows `per`."""

_TOKEN_RE: Final = re.compile(r"[A-Za-z0-9:]+")


class InvalidMetricNameError(ValueError):
    """An OTLP metric name that has no Prometheus form; the metric is dropped, with this reason."""


def prometheus_metric_name(
    name: str,
    unit: str,
    *,
    counter: bool,
    gauge: bool,
    namespace: str = "",
    add_suffixes: bool = True,
) -> str:
    """The Prometheus name of OTLP metric `name` in `unit` (see the module docstring).

    `counter` marks a monotonic cumulative sum, `gauge` a gauge or non-monotonic sum; both False
    means a histogram or summary, whose `_bucket`/`_sum`/`_count` the caller appends.
    """
    if counter and gauge:
        raise ValueError("prometheus_metric_name: counter and gauge are mutually exclusive")
    tokens: list[str] = _TOKEN_RE.findall(name)
    if not tokens:
        raise InvalidMetricNameError(
            f"metric name {name!r} has no character allowed in a Prometheus name ([A-Za-z0-9:])"
        )
    if add_suffixes:
        tokens = _with_suffixes(tokens, unit, counter=counter, gauge=gauge)
    if namespace:
        tokens[:0] = _TOKEN_RE.findall(namespace)
    result = "_".join(tokens)
    if result[0].isdigit():  # tokens are ASCII, so this is exactly [0-9]
        result = "_" + result
    return result


def _with_suffixes(tokens: list[str], unit: str, *, counter: bool, gauge: bool) -> list[str]:
    main, _, per = unit.partition("/")
    main_tokens = _unit_part_tokens(main, UNIT_WORDS)
    per_tokens = _unit_part_tokens(per, PER_UNIT_WORDS)
    if per_tokens:
        per_tokens.insert(0, "per")
    out = list(tokens)
    # Both checks look at the name as the producer wrote it, not at what step 2 appended.
    if main_tokens and not _occurs(main_tokens, tokens):
        out += main_tokens
    if per_tokens and not _occurs(per_tokens, tokens):
        out += per_tokens
    if counter:
        out = [token for token in out if token != "total"]
        out.append("total")
    elif gauge and unit.strip() == "1":
        out = [token for token in out if token != "ratio"]
        out.append("ratio")
    return out


def _unit_part_tokens(part: str, words: dict[str, str]) -> list[str]:
    part = part.strip()
    if not part or "{" in part or "}" in part:
        return []
    tokens: list[str] = _TOKEN_RE.findall(words.get(part, part))
    return tokens


def _occurs(needle: list[str], haystack: list[str]) -> bool:
    """Whether `needle` occurs as a contiguous run of `haystack`."""
    size = len(needle)
    return any(haystack[i : i + size] == needle for i in range(len(haystack) - size + 1))
