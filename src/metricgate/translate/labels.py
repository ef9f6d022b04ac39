"""OTLP attribute keys -> Prometheus label names, and text exposition escaping of labels and values.

Label names follow the OpenTelemetry "Prometheus and OpenMetrics compatibility" specification
(section "Metric Attributes") and reference/prometheus-translation.md. Decisions on edge cases:

- Every character outside `[A-Za-z0-9]` becomes `_` and every run of `_` (original or
  replaced) collapses to one: `a.-_b` -> `a_b`, `__foo` -> `_foo`, `.foo` -> `_foo`.
- A key that starts and ends with `__` and has something in between is reserved (`__name__`,
  `__meta_x__`): its middle is sanitised as above and the `__` on both ends are kept. Whether a
  reserved name may reach a series is the caller's decision, not this module's.
- A result starting with a digit gets `key_`: `123label` -> `key_123label`. A single leading `_`
  is kept (the deprecated otlptranslator option that turns `_foo` into `key_foo` is not offered).
- An empty key, or one whose result has only underscores (`_`, `..`, `____`), raises
  `InvalidLabelNameError`.
- Collisions: `merge_label_pairs` joins the values of keys that map to one name with `;`, in the
  lexicographic (code point, which is also UTF-8 byte) order of the original keys. Repeats of one
  key are joined too, in input order. Pairs whose key is invalid are skipped, not raised, so one
  bad attribute does not cost the whole series. Empty values are kept: the caller decides.

Invariant: `prometheus_label_name` returns a string matching `LABEL_NAME_RE` or raises
`InvalidLabelNameError`, and is idempotent (a name it returned maps to itself), so callers may
pass names that are already translated (`exported_le`) through `merge_label_pairs` again.

Values: `escape_label_value` and `escape_help` escape for the text exposition format, and
`format_value` renders a sample value (see its docstring for where it differs from Go).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from operator import itemgetter
from typing import Final

__all__ = [
    "InvalidLabelNameError",
    "escape_help",
    "escape_label_value",
    "format_value",
    "merge_label_pairs",
    "prometheus_label_name",
]

_INVALID_RUN_RE: Final = re.compile(r"[^A-Za-z0-9]+")
_EXACT_INTEGER_BOUND: Final = 1e15
"""Below this every integral float is exact and prints in at most 15 digits."""


class InvalidLabelNameError(ValueError):
    """An OTLP attribute key that has no Prometheus label name; the attribute is dropped."""


def prometheus_label_name(key: str) -> str:
    """The Prometheus label name of OTLP attribute `key` (see the module docstring)."""
    if not key:
        raise InvalidLabelNameError("label name is empty")
    if len(key) > 4 and key.startswith("__") and key.endswith("__"):
        name = f"__{_INVALID_RUN_RE.sub('_', key[2:-2])}__"
    else:
        name = _INVALID_RUN_RE.sub("_", key)
        if name[0].isdigit():  # ASCII only after the substitution
            name = "key_" + name
    if not name.strip("_"):
        raise InvalidLabelNameError(f"label name {key!r} maps to {name!r}: only underscores")
    return name


def merge_label_pairs(pairs: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """`(otlp_key, value)` pairs -> `(label_name, value)` pairs, unique and sorted by name.

    Values of keys that map to one name are joined with `;` in the sorted order of the original
    keys; pairs with an invalid key are skipped.
    """
    merged: dict[str, list[str]] = {}
    for key, value in sorted(pairs, key=itemgetter(0)):  # stable: repeats keep input order
        try:
            name = prometheus_label_name(key)
        except InvalidLabelNameError:
            continue
        merged.setdefault(name, []).append(value)
    return tuple(sorted(((name, ";".join(values)) for name, values in merged.items())))


def escape_label_value(value: str) -> str:
    r"""`value` escaped for a quoted label value: `\` -> `\\`, `"` -> `\"`, newline -> `\n`."""
    if "\\" in value:
        value = value.replace("\\", "\\\\")
    if '"' in value:
        value = value.replace('"', '\\"')
    if "\n" in value:
        value = value.replace("\n", "\\n")
    return value


def escape_help(text: str) -> str:
    r"""`text` escaped for a `# HELP` line: `\` -> `\\`, newline -> `\n` (quotes stay)."""
    if "\\" in text:
        text = text.replace("\\", "\\\\")
    if "\n" in text:
        text = text.replace("\n", "\\n")
    return text


def format_value(value: float) -> str:
    """`value` as a sample value in the text exposition format.

    `+Inf`, `-Inf` and `NaN` as Prometheus spells them; an integral value below 1e15 in magnitude
    as a plain integer (`1`, `1000000`, and `-0` for negative zero, as Prometheus writes it),
    which is exact because such floats are; anything else as Python's shortest round-tripping
    `repr` (`1.5`, `1e-05`, `1e+16`). Every output parses back to `value` exactly, sign of zero
    included. Go's `strconv.FormatFloat(v, 'g', -1, 64)`, which Prometheus' own clients use,
    agrees except that it switches to an exponent from 1e6 on (`1e+06`, `1.2345675e+06` where we
    print `1000000`, `1234567.5`) and prints integral values in [1e15, 1e16) as `1e+15` where
    `repr` gives `1000000000000000.0`. All of these are the same number to any Prometheus parser.
    """
    # The range test is False for NaN and both infinities, so the common case costs one compare.
    if -_EXACT_INTEGER_BOUND < value < _EXACT_INTEGER_BOUND:
        integer = int(value)
        if integer == value:
            return str(integer) if integer or math.copysign(1.0, value) > 0 else "-0"
        return repr(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)
