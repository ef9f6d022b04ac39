"""OTLP -> Prometheus translation, shared by every Prometheus-facing component.

`names` turns metric names and units into Prometheus metric names, `labels` attribute keys into
label names (and escapes and formats exposition text), `attributes` attribute values into label
values, `families` OTLP kinds into Prometheus types, `series` maps interned model objects to
cached Prometheus views (family, labels, `target_info`), `units` optionally normalises scaled units
to base units and `exponential` converts exponential histograms to explicit buckets.

Invariant: nothing here raises on the data path; untranslatable input becomes a `Dropped` verdict.
"""

from metricgate.translate.exponential import to_explicit as exponential_to_explicit
from metricgate.translate.labels import (
    InvalidLabelNameError,
    escape_help,
    escape_label_value,
    format_value,
    merge_label_pairs,
    prometheus_label_name,
)
from metricgate.translate.names import (
    LABEL_NAME_RE,
    METRIC_NAME_RE,
    InvalidMetricNameError,
    prometheus_metric_name,
)
from metricgate.translate.series import (
    TARGET_INFO,
    Dropped,
    FamilyType,
    FamilyView,
    PrometheusTranslator,
    SeriesView,
    TargetInfo,
    attribute_text,
    render_labels,
)
from metricgate.translate.units import normalize_unit

__all__ = [
    "LABEL_NAME_RE",
    "METRIC_NAME_RE",
    "TARGET_INFO",
    "Dropped",
    "FamilyType",
    "FamilyView",
    "InvalidLabelNameError",
    "InvalidMetricNameError",
    "PrometheusTranslator",
    "SeriesView",
    "TargetInfo",
    "attribute_text",
    "escape_help",
    "escape_label_value",
    "exponential_to_explicit",
    "format_value",
    "merge_label_pairs",
    "normalize_unit",
    "prometheus_label_name",
    "prometheus_metric_name",
    "render_labels",
]
