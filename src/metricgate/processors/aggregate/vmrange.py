"""VictoriaMetrics histogram buckets (`vmrange` labels) for the `histogram_bucket` output.

The bucket layout is VictoriaMetrics' documented log-linear one: 18 buckets per decade from 1e-9 to
1e18, labelled `vmrange="<start>...<end>"` with both ends printed as `%.3e`, plus
`0...1.000e-09` below and `1.000e+18...+Inf` above. A value equal to a bucket's upper end belongs
to that bucket (Prometheus' `le` convention). Negative and NaN values are not counted, as in
VictoriaMetrics.

Invariant: `bucket_index` and `bucket_label` agree: every index `bucket_index` returns has a label.
"""

from __future__ import annotations

import math
from typing import Final

_E10_MIN: Final = -9
_E10_MAX: Final = 18
_PER_DECADE: Final = 18
_COUNT: Final = (_E10_MAX - _E10_MIN) * _PER_DECADE
LOWER: Final = -1
UPPER: Final = _COUNT


def _ranges() -> tuple[str, ...]:
    multiplier = 10 ** (1 / _PER_DECADE)
    start = 10.0**_E10_MIN
    out = []
    for _ in range(_COUNT):
        end = start * multiplier
        out.append(f"{start:.3e}...{end:.3e}")
        start = end
    return tuple(out)


_LABELS: Final = _ranges()
_LOWER_LABEL: Final = f"0...{10.0**_E10_MIN:.3e}"
_UPPER_LABEL: Final = f"{10.0**_E10_MAX:.3e}...+Inf"


def bucket_index(value: float) -> int | None:
    """The bucket `value` falls in (`LOWER`, 0.._COUNT-1, `UPPER`), or None if not counted."""
    if not value >= 0.0:  # negative or NaN
        return None
    if value == 0.0:
        return LOWER
    position = (math.log10(value) - _E10_MIN) * _PER_DECADE
    if position < 0:
        return LOWER
    if position >= _COUNT:
        return UPPER
    index = int(position)
    if index == position and index > 0:
        index -= 1  # 10**n closes the bucket below it, like `le`
    return index


def bucket_label(index: int) -> str:
    """The `vmrange` label value of a bucket index."""
    if index == LOWER:
        return _LOWER_LABEL
    if index == UPPER:
        return _UPPER_LABEL
    return _LABELS[index]
