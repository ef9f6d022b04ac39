"""OpenTelemetry instruments bound to a `MetricSpec`, so every recording is checked against it.

`AgentMetrics` records each catalog entry through one of these, and its `counter()`,
`histogram()` and `gauge()` factories hand them out for metrics outside the catalog.

Invariant: nothing reaches the SDK without passing `MetricSpec.attributes` (label keys exactly the
spec's, values non-empty and within the allowed sets) and the value checks here, so a bad call
raises ValueError at the call site instead of becoming a series no rule or dashboard matches.
"""

from __future__ import annotations

import math

from metricgate.catalog.spec import MetricKind, MetricSpec
from metricgate.extras import MissingExtraError

try:
    from opentelemetry.metrics import Meter
except ImportError as exc:
    raise MissingExtraError.of(exc, "catalog", "the catalog's instruments") from exc

from metricgate.translate.names import prometheus_metric_name

__all__ = ["CatalogCounter", "CatalogGauge", "CatalogHistogram", "custom_spec"]


def custom_spec(
    kind: MetricKind,
    name: str,
    *,
    unit: str,
    description: str,
    labels: tuple[str, ...],
    allowed_values: dict[str, frozenset[str]] | None = None,
    buckets: tuple[float, ...] = (),
) -> MetricSpec:
    """A `MetricSpec` for a metric outside the catalog, named as metricgate will expose it."""
    prometheus_name = prometheus_metric_name(
        name,
        unit,
        counter=kind is MetricKind.COUNTER,
        gauge=kind is MetricKind.GAUGE,
    )
    return MetricSpec(
        prometheus_name=prometheus_name,
        otlp_name=name,
        unit=unit,
        kind=kind,
        description=description,
        labels=labels,
        allowed_values=allowed_values or {},
        buckets=buckets,
    )


def _finite(spec: MetricSpec, value: float, *, non_negative: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"metric {spec.prometheus_name!r}: value must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"metric {spec.prometheus_name!r}: value must be finite, got {value!r}")
    if non_negative and value < 0:
        raise ValueError(
            f"metric {spec.prometheus_name!r}: value must not be negative, got {value!r}"
        )
    return value


def _check_kind(spec: MetricSpec, kind: MetricKind) -> None:
    if spec.kind is not kind:
        raise ValueError(
            f"metric {spec.prometheus_name!r} is a {spec.kind.value}, not {kind.value}"
        )


class CatalogCounter:
    """A monotonic counter: exposed as `<prometheus_name>` (which ends in `_total`)."""

    def __init__(self, spec: MetricSpec, meter: Meter) -> None:
        _check_kind(spec, MetricKind.COUNTER)
        self.spec = spec
        self._counter = meter.create_counter(spec.otlp_name, spec.unit, spec.description)

    def add(self, amount: float = 1, **labels: str) -> None:
        """Add `amount` (>= 0) to the series with these labels."""
        value = _finite(self.spec, amount, non_negative=True)
        self._counter.add(value, self.spec.attributes(labels))


class CatalogHistogram:
    """An explicit-bucket histogram with the spec's boundaries (given to the SDK as advice too)."""

    def __init__(self, spec: MetricSpec, meter: Meter) -> None:
        _check_kind(spec, MetricKind.HISTOGRAM)
        self.spec = spec
        self._histogram = meter.create_histogram(
            spec.otlp_name,
            spec.unit,
            spec.description,
            explicit_bucket_boundaries_advisory=list(spec.buckets),
        )

    def record(self, value: float, **labels: str) -> None:
        """Record one observation (>= 0, in the spec's unit)."""
        checked = _finite(self.spec, value, non_negative=True)
        self._histogram.record(checked, self.spec.attributes(labels))


class CatalogGauge:
    """A synchronous gauge: the last value set for each label set is exported."""

    def __init__(self, spec: MetricSpec, meter: Meter) -> None:
        _check_kind(spec, MetricKind.GAUGE)
        self.spec = spec
        self._gauge = meter.create_gauge(spec.otlp_name, spec.unit, spec.description)

    def set(self, value: float, **labels: str) -> None:
        """Set the current value of the series with these labels."""
        checked = _finite(self.spec, value, non_negative=False)
        self._gauge.set(checked, self.spec.attributes(labels))
