"""The aggregation outputs a rule can compute, how they are spelled and how their series are named.

Output names follow vmagent's stream aggregation exactly:
`<metric>:<interval>[_by_<labels>][_without_<labels>]_<output>`, label lists sorted and joined with
`_` (`http_requests_total:1m_without_instance_total`); `quantiles(...)` outputs are named
`..._quantiles` and carry a `quantile` label spelled as written in the config.

Invariant: `parse_output` accepts exactly the spellings vmagent accepts for the outputs listed in
`OutputKind`, and every `Output` it returns has a non-empty `name`; the config model relies on it
to report a bad output at its key path.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class OutputKind(StrEnum):
    """One aggregation function (vmagent's output names)."""

    TOTAL = "total"
    TOTAL_PROMETHEUS = "total_prometheus"
    INCREASE = "increase"
    INCREASE_PROMETHEUS = "increase_prometheus"
    RATE_SUM = "rate_sum"
    RATE_AVG = "rate_avg"
    COUNT_SERIES = "count_series"
    COUNT_SAMPLES = "count_samples"
    SUM_SAMPLES = "sum_samples"
    UNIQUE_SAMPLES = "unique_samples"
    LAST = "last"
    MIN = "min"
    MAX = "max"
    AVG = "avg"
    STDDEV = "stddev"
    STDVAR = "stdvar"
    HISTOGRAM_BUCKET = "histogram_bucket"
    QUANTILES = "quantiles"


COUNTER_OUTPUTS = frozenset(
    {
        OutputKind.TOTAL,
        OutputKind.TOTAL_PROMETHEUS,
        OutputKind.INCREASE,
        OutputKind.INCREASE_PROMETHEUS,
        OutputKind.RATE_SUM,
        OutputKind.RATE_AVG,
    }
)
"""Outputs computed from per-input-series deltas (counter semantics)."""

HISTOGRAM_INPUT_OUTPUTS = frozenset(
    {
        OutputKind.TOTAL,
        OutputKind.TOTAL_PROMETHEUS,
        OutputKind.INCREASE,
        OutputKind.INCREASE_PROMETHEUS,
        OutputKind.HISTOGRAM_BUCKET,
        OutputKind.COUNT_SERIES,
        OutputKind.COUNT_SAMPLES,
    }
)
"""Outputs that mean something for explicit-bucket histogram inputs (merged bucket-wise)."""

_QUANTILES_RE = re.compile(r"^quantiles\((.*)\)$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Output:
    """A parsed `outputs` entry: its kind and, for `quantiles(...)`, the phis (text, value)."""

    kind: OutputKind
    phis: tuple[tuple[str, float], ...] = ()

    @property
    def name(self) -> str:
        """The output's name in output metric names (`quantiles` for any quantiles list)."""
        return self.kind.value


def parse_output(text: object) -> Output:
    """Parse one `outputs` entry; raises `ValueError` with the expected spellings."""
    if not isinstance(text, str):
        raise ValueError(f"expected an output name, got {text!r}")
    spelled = text.strip()
    match = _QUANTILES_RE.match(spelled.replace(" ", ""))
    if match:
        phis = []
        for part in match.group(1).split(","):
            try:
                phi = float(part)
            except ValueError:
                raise ValueError(
                    f"expected quantiles(phi, ...) with each phi in [0, 1], got {text!r}"
                ) from None
            if not 0.0 <= phi <= 1.0 or math.isnan(phi):
                raise ValueError(f"quantile {part} is outside [0, 1] in {text!r}")
            phis.append((part, phi))
        return Output(OutputKind.QUANTILES, tuple(phis))
    try:
        kind = OutputKind(spelled)
    except ValueError:
        known = ", ".join(k.value for k in OutputKind if k is not OutputKind.QUANTILES)
        raise ValueError(
            f"unknown output {text!r} (expected one of: {known}, quantiles(phi, ...))"
        ) from None
    if kind is OutputKind.QUANTILES:
        raise ValueError("expected quantiles(phi, ...), e.g. 'quantiles(0.5, 0.99)'")
    return Output(kind)


def format_interval(seconds: float) -> str:
    """A duration given as a number, spelled the way vmagent users write one (`1m`, `90s`)."""
    millis = round(seconds * 1000)
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if millis % size == 0:
            return f"{millis // size}{unit}"
    return f"{millis}ms"


def output_metric_name(
    metric: str,
    interval: str,
    by: Sequence[str] | None,
    without: Sequence[str] | None,
    output: Output,
) -> str:
    """`<metric>:<interval>[_by_<labels>][_without_<labels>]_<output>` (labels sorted)."""
    parts = [f"{metric}:{interval}"]
    if by:
        parts.append("_by_" + "_".join(sorted(by)))
    if without:
        parts.append("_without_" + "_".join(sorted(without)))
    parts.append(f"_{output.name}")
    return "".join(parts)
