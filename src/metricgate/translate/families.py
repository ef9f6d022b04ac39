"""What kind of Prometheus family an OTLP metric becomes, and the verdict when it cannot.

`family_type(metric)` follows the specification's type rules: gauges and cumulative up-down sums
are gauges, monotonic sums (cumulative, or delta once accumulated) counters, histograms of both
kinds histograms, summaries summaries; delta up-down sums and sums or histograms without a
temporality are `Dropped`, with a reason. `unit_word` finds the OpenMetrics UNIT of a family.

Invariant: `Dropped.reason` is a short snake_case word: it becomes a telemetry label value.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from metricgate.model import Metric, MetricKind, Temporality
from metricgate.translate.names import InvalidMetricNameError, prometheus_metric_name


class FamilyType(StrEnum):
    """A Prometheus metric family type, as written on the `# TYPE` line."""

    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"
    SUMMARY = "summary"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Dropped:
    """A verdict: this metric or series cannot be translated. `reason` is a telemetry label."""

    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class FamilyView:
    """How one OTLP metric appears in Prometheus.

    `name` is the sample name for counters and gauges and the base of `_bucket`/`_sum`/`_count`
    for histograms and summaries. `unit` is the OpenMetrics UNIT (empty when the name does not end
    in it). `scale` multiplies every value (1.0 unless unit normalisation changed the unit).
    """

    name: str
    type: FamilyType
    help: str
    unit: str = ""
    scale: float = 1.0


def family_type(metric: Metric) -> FamilyType | Dropped:
    """The Prometheus type `metric` becomes, or why it has none (see the module docstring)."""
    kind = metric.kind
    if kind is MetricKind.GAUGE:
        return FamilyType.GAUGE
    if kind is MetricKind.SUMMARY:
        return FamilyType.SUMMARY
    if metric.temporality is Temporality.UNSPECIFIED:
        return Dropped("unspecified_temporality", f"metric {metric.name!r} has no temporality")
    if kind is MetricKind.SUM:
        if metric.monotonic:
            return FamilyType.COUNTER
        if metric.temporality is Temporality.CUMULATIVE:
            return FamilyType.GAUGE
        # A sum of up-down deltas restarted from zero (gateway restart, a lost batch) would be a
        # wrong absolute level with no reset visible to PromQL; the specification drops them.
        return Dropped("delta_non_monotonic_sum", f"metric {metric.name!r} is a delta up-down sum")
    return FamilyType.HISTOGRAM


_PROBE = "metricgateunitprobe"
"""A name token no unit word contains, to read a unit's suffix off `prometheus_metric_name`."""


def unit_word(unit: str, name: str, kind: FamilyType) -> str:
    """The OpenMetrics UNIT of family `name`: the unit's suffix words, if the name ends in them.

    OpenMetrics requires a family name to end in `_<unit>`; a name that does not (suffixes
    turned off, a unit the producer spelled differently) simply gets no UNIT line.
    """
    if not unit:
        return ""
    try:
        word = prometheus_metric_name(_PROBE, unit, counter=False, gauge=False)
    except InvalidMetricNameError:
        return ""
    word = word.removeprefix(_PROBE).removeprefix("_")
    base = name.removesuffix("_total") if kind is FamilyType.COUNTER else name
    return word if word and base.endswith(f"_{word}") else ""
