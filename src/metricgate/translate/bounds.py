"""Bucket bounds and quantiles as label values (`le`, `quantile`), one spelling on every output.

A Prometheus series is its name and label *strings*: `le="1"` and `le="1.0"` are two series to
Prometheus 2.x. So every output that writes a bound or a quantile (the scrape page in the text
format and in OpenMetrics, remote-write 1.0 and 2.0) writes it as `go_float` does: Go's
`strconv.FormatFloat(v, 'g', -1, 64)`, the shortest text that reads back as `v`, with an exponent
from 1e+06 on and below 1e-04 (`1`, `0.005`, `250000`, `1e+06`, `1e-05`), and `+Inf`, `-Inf`, `NaN`.
That is what client_golang's text format, the Pushgateway and the OpenTelemetry Collector's
`prometheus` exporter write, so replacing one of them keeps every series' identity. (client_golang's
OpenMetrics writer appends `.0` to integral values, and the Collector's remote-write exporter never
uses an exponent, `1000000`; we follow the text format everywhere, which Prometheus 2.x scrapes
from the Pushgateway and from the Collector by default. Prometheus 3 normalises `le` and
`quantile` on ingestion, so there it makes no difference.)

`bound_labels(values)` gives the label texts of a tuple of bounds or quantiles once per distinct
tuple (cached: receivers share one bounds tuple per metric) and which positions to write: a text
written twice would put one series on a page twice, so of equal texts only the last position is
kept (a histogram's cumulative count there includes the equal buckets before it; a summary's
last value wins), and a bound spelled `+Inf` is left to the `+Inf` bucket every histogram has.

Invariant: `go_float` returns the same text for the same float, every time and on every output;
`BoundLabels.keep` is None exactly when every text is written, in order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

__all__ = ["BoundLabels", "bound_labels", "go_float"]

_MAX_CACHED: Final = 4096
"""Distinct bounds/quantile tuples kept; past it the cache starts over."""


def go_float(value: float) -> str:
    """`value` as Go's `strconv.FormatFloat(value, 'g', -1, 64)`, with Prometheus' infinities.

    Python's `repr` yields the same shortest round-tripping digits as Go (both pick, among the
    shortest decimal strings that read back as `value`, the one closest to it); only the layout
    differs: Go switches to an exponent when it is below -4 or at least 6 (`%g` with the shortest
    precision uses 6 for that decision) and writes it with at least two digits.
    """
    if not math.isfinite(value):
        if value != value:
            return "NaN"
        return "+Inf" if value > 0 else "-Inf"
    text = repr(value)
    negative = text[0] == "-"
    if negative:
        text = text[1:]
    mantissa, _, exponent = text.partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    point = len(whole) + (int(exponent) if exponent else 0)  # decimal point's place in digits
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    sign = "-" if negative else ""
    if not digits:
        return f"{sign}0"
    power = point - 1
    if power < -4 or power >= 6:
        head = digits[0] + (f".{digits[1:]}" if len(digits) > 1 else "")
        return f"{sign}{head}e{'-' if power < 0 else '+'}{abs(power):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{sign}{digits}{'0' * (point - len(digits))}"
    return f"{sign}{digits[:point]}.{digits[point:]}"


@dataclass(frozen=True, slots=True)
class BoundLabels:
    """The label texts of a tuple of bounds (or quantiles), and which of them to write.

    `texts[i]` spells `values[i]`; `keep` lists the positions to write, in order, or is None when
    all of them are (the usual case: strictly increasing finite bounds); `written` are the texts
    at those positions.
    """

    texts: tuple[str, ...]
    keep: tuple[int, ...] | None
    written: tuple[str, ...]


_CACHE: dict[tuple[float, ...], BoundLabels] = {}


def bound_labels(values: tuple[float, ...]) -> BoundLabels:
    """The `BoundLabels` of `values` (cached per distinct tuple; see the module docstring)."""
    found = _CACHE.get(values)
    if found is None:
        if len(_CACHE) >= _MAX_CACHED:
            _CACHE.clear()
        texts = tuple(map(go_float, values))
        last = {text: i for i, text in enumerate(texts)}
        last.pop("+Inf", None)
        keep = tuple(sorted(last.values()))
        if len(keep) == len(texts):
            found = BoundLabels(texts, None, texts)
        else:
            found = BoundLabels(texts, keep, tuple(texts[i] for i in keep))
        # NaN != NaN: bounds holding NaN never hit the cache; they are rare and built again.
        _CACHE[values] = found
    return found
