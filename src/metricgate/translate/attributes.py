"""Attribute values as Prometheus label values, and label pairs as exposition text.

`attribute_text` follows the OpenTelemetry attribute rules for non-string values (booleans,
integers, floats in plain decimal as the Collector prints them, arrays as JSON); `render_labels`
writes `a="x",b="y"` with values escaped.

Invariant: `attribute_text` is total: it returns a string for every `AttributeValue`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from decimal import Decimal
from typing import Final

from metricgate.model import AttributeValue
from metricgate.model.caches import BoundedTable
from metricgate.translate.labels import escape_label_value

_TEMPLATES: Final[BoundedTable[tuple[str, ...], str]] = BoundedTable(10_000)
"""Label names -> `a="%s",b="%s"`: most series share their names with many others."""


def render_labels(names: Iterable[str], values: Iterable[str]) -> str:
    """`a="x",b="y"`: label pairs as exposition text (values escaped, no braces)."""
    if names.__class__ is tuple and values.__class__ is tuple:
        # Names and values as the translator keeps them: fill in the names' template, unless a
        # value needs escaping (rare).
        template = _TEMPLATES.entries.get(names)
        if template is None:
            template = _TEMPLATES.put(
                names,
                ",".join(f'{name.replace("%", "%%")}="%s"' for name in names),
            )
        joined = "".join(values)
        if '"' not in joined and "\\" not in joined and "\n" not in joined:
            return template % values
    return ",".join(
        f'{name}="{escape_label_value(value)}"' for name, value in zip(names, values, strict=True)
    )


def attribute_text(value: AttributeValue) -> str:
    """An attribute value as a label value, following the OpenTelemetry attribute rules.

    Strings as they are, booleans `true`/`false`, integers in decimal, floats in plain decimal
    notation (`1`, `0.25`, `100000000000000000000`, as the Collector prints them), arrays as JSON.
    """
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return "NaN"
        if value in (float("inf"), float("-inf")):
            return "+Inf" if value > 0 else "-Inf"
        return format(Decimal(repr(value)).normalize(), "f")
    return json.dumps(_jsonable(value), separators=(",", ":"), ensure_ascii=False)


def _jsonable(value: AttributeValue) -> object:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return attribute_text(value)
    return value
