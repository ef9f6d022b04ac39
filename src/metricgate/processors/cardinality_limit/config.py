"""`processors.cardinality_limit` configuration.

Every cap is a number of *active* series (seen within `window`); 0 means no cap. Invalid values are
reported with their key path, e.g. `processors.cardinality_limit.per_label[1].max_series: expected
greater than or equal to 0, got -5`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, field_validator

from metricgate.config.types import ComponentConfig, Duration


class PerLabelLimit(ComponentConfig):
    """One `per_label` entry: at most `max_series` active series per value of `label`.

    The label is looked up in the series attributes, then in the resource attributes (so an OTLP
    `tenant` resource attribute works too). Series without the label are not subject to this cap.
    """

    label: str = Field(min_length=1)
    max_series: int = Field(ge=0)


def _per_label_shape(value: Any) -> str | None:
    if isinstance(value, dict | PerLabelLimit):
        return "mapping[PerLabelLimit]"
    if isinstance(value, list | tuple):
        return "list[PerLabelLimit]"
    return None


# The union tags contain "[" so that the config error formatter leaves them out of key paths,
# exactly as it does for pydantic's own union tags: errors read `per_label.max_series` for the
# mapping form and `per_label[1].max_series` for the list form.
PerLabelSetting = Annotated[
    Annotated[PerLabelLimit, Tag("mapping[PerLabelLimit]")]
    | Annotated[list[PerLabelLimit], Tag("list[PerLabelLimit]")],
    Discriminator(
        _per_label_shape,
        custom_error_type="per_label_shape",
        custom_error_message="expected a mapping or a list of mappings",
    ),
]


class CardinalityLimitConfig(ComponentConfig):
    """`processors.cardinality_limit`: caps on active series; see the package docstring."""

    max_series: int = Field(default=1_000_000, ge=0)
    """Active series across all metrics; 0 = no cap."""
    max_series_per_metric: int = Field(default=10_000, ge=0)
    """Active series per metric name; 0 = no cap."""
    per_label: PerLabelSetting = []
    """`{label, max_series}` or a list of them: active series per value of a label (tenant)."""
    on_limit: Literal["overflow", "drop"] = "overflow"
    """What happens to a new series over a cap: folded into the overflow series, or dropped."""
    window: Duration = 3600.0
    """A series is active while it was seen within this long."""
    window_type: Literal["sliding", "fixed"] = "sliding"
    """`sliding`: a series expires when unseen for `window` (forgotten within 2 x window).
    `fixed`: all counts reset every `window` from start, like vmagent's hourly series limit."""
    max_refused_series: int = Field(default=100_000, ge=1)
    """Refused series remembered (verdict, last cumulative value); bounds memory under a flood."""
    max_label_values: int = Field(default=10_000, ge=1)
    """Distinct values counted exactly per (metric, label) for /debug/cardinality; then `>=`."""
    telemetry_metrics: int = Field(default=100, ge=1)
    """Metric names that get their own label in metricgate's self-metrics (top N); rest `_other`."""
    tenant_attribute: str = "tenant.id"
    """Resource attribute naming the tenant: each tenant gets a budget of its own (`budgets.py`);
    "" = one budget for all data."""
    max_tenants: int = Field(default=1000, ge=1)
    """Tenants not listed under `tenants:` that get budgets of their own; the rest share one."""

    @field_validator("window")
    @classmethod
    def _window_positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError(f"expected a duration greater than 0, got {value!r}")
        return value

    @field_validator("per_label")
    @classmethod
    def _labels_unique(
        cls, value: PerLabelLimit | list[PerLabelLimit]
    ) -> PerLabelLimit | list[PerLabelLimit]:
        seen: set[str] = set()
        for entry in value if isinstance(value, list) else [value]:
            if entry.label in seen:
                raise ValueError(f"label {entry.label!r} is listed twice")
            seen.add(entry.label)
        return value

    @property
    def label_limits(self) -> tuple[PerLabelLimit, ...]:
        """`per_label` as a tuple, whichever form the config used."""
        value = self.per_label
        return tuple(value) if isinstance(value, list) else (value,)
