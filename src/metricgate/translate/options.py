"""The translation keys the Prometheus-shaped exporters share, as one config model.

`prometheus` and `prometheus_remote_write` both show series the Prometheus way and take the same
keys for it (`namespace`, `resource_to_telemetry_conversion`, `enable_scope_labels`,
`add_metric_suffixes`); `TranslationOptions` declares and checks them once and builds the
exporter's `PrometheusTranslator`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from metricgate.translate.names import LABEL_NAME_RE
from metricgate.translate.series import PrometheusTranslator


class ResourceToTelemetryConversion(BaseModel):
    """`resource_to_telemetry_conversion`: copy every resource attribute onto every series."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False


class TranslationOptions(BaseModel):
    """Translation keys of an exporter config (mixed into it; see module docstring)."""

    namespace: str = ""
    """Prefix for every metric name (`namespace_name`); `target_info` is never prefixed."""
    resource_to_telemetry_conversion: ResourceToTelemetryConversion = (
        ResourceToTelemetryConversion()
    )
    enable_scope_labels: bool = True
    """Put `otel_scope_name`, `otel_scope_version`, ... on every series."""
    add_metric_suffixes: bool = True
    """Append unit and `_total` / `_ratio` suffixes to metric names."""

    @field_validator("namespace")
    @classmethod
    def _check_namespace(cls, value: str) -> str:
        if value and not LABEL_NAME_RE.match(value):
            raise ValueError(f"expected a namespace like [a-zA-Z_][a-zA-Z0-9_]*, got {value!r}")
        return value

    def translator(self, **options: Any) -> PrometheusTranslator:
        """The translator these keys describe; `options` are the exporter's other ones."""
        return PrometheusTranslator(
            namespace=self.namespace,
            add_unit_suffixes=self.add_metric_suffixes,
            resource_to_telemetry_conversion=self.resource_to_telemetry_conversion.enabled,
            enable_scope_labels=self.enable_scope_labels,
            **options,
        )
