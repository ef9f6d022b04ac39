"""cardinality_limit config: defaults, both per_label forms, and errors that name the key path."""

from __future__ import annotations

import pytest

from metricgate.config import load_config_text
from metricgate.errors import ConfigError
from metricgate.processors.cardinality_limit import CardinalityLimitConfig, PerLabelLimit
from tests.support.capture import registry_with_capture

TEMPLATE = """
receivers: {{inject: {{}}}}
processors:
  cardinality_limit/x: {body}
exporters: {{capture: {{}}}}
service:
  telemetry: {{metrics: {{address: ""}}}}
  pipelines:
    metrics: {{receivers: [inject], processors: [cardinality_limit/x], exporters: [capture]}}
"""


def load(body: str) -> CardinalityLimitConfig:
    config = load_config_text(TEMPLATE.format(body=body), registry_with_capture(), {})
    found = config.processors["cardinality_limit/x"].config
    assert isinstance(found, CardinalityLimitConfig)
    return found


def problems(body: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(body)
    return info.value.problems


def test_defaults() -> None:
    config = load("{}")
    assert (config.max_series, config.max_series_per_metric) == (1_000_000, 10_000)
    assert (config.on_limit, config.window, config.window_type) == ("overflow", 3600.0, "sliding")
    assert config.label_limits == ()


def test_per_label_accepts_a_mapping_or_a_list() -> None:
    one = load("{per_label: {label: tenant, max_series: 50000}, window: 5m}")
    assert one.label_limits == (PerLabelLimit(label="tenant", max_series=50000),)
    assert one.window == 300.0
    two = load("{per_label: [{label: tenant, max_series: 5}, {label: team, max_series: 0}]}")
    assert [limit.label for limit in two.label_limits] == ["tenant", "team"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "{max_series: -1}",
            "processors.cardinality_limit/x.max_series: expected greater than or equal to 0, "
            "got -1",
        ),
        (
            "{max_series_per_metric: lots}",
            "processors.cardinality_limit/x.max_series_per_metric: expected an integer, got 'lots'",
        ),
        (
            "{on_limit: block}",
            "processors.cardinality_limit/x.on_limit: expected 'overflow' or 'drop', got 'block'",
        ),
        (
            "{window: soon}",
            "processors.cardinality_limit/x.window: expected a duration like 30s or 5m, got 'soon'",
        ),
        (
            "{window: 0s}",
            "processors.cardinality_limit/x.window: expected a duration greater than 0, got 0.0",
        ),
        (
            "{window_type: tumbling}",
            "processors.cardinality_limit/x.window_type: expected 'sliding' or 'fixed', "
            "got 'tumbling'",
        ),
        (
            "{per_label: {label: tenant, max_series: -5}}",
            "processors.cardinality_limit/x.per_label.max_series: expected greater than or "
            "equal to 0, got -5",
        ),
        (
            "{per_label: [{label: tenant, max_series: 5}, {label: team}]}",
            "processors.cardinality_limit/x.per_label[1].max_series: required key is missing",
        ),
        (
            "{per_label: {lable: tenant, max_series: 5}}",
            "processors.cardinality_limit/x.per_label.lable: unknown key "
            "(expected one of: label, max_series)",
        ),
        (
            "{per_label: tenant}",
            "processors.cardinality_limit/x.per_label: expected a mapping or a list of "
            "mappings, got 'tenant'",
        ),
        (
            "{per_label: [{label: t, max_series: 1}, {label: t, max_series: 2}]}",
            "processors.cardinality_limit/x.per_label: label 't' is listed twice",
        ),
        (
            "{max_series_per_metrics: 5}",
            "processors.cardinality_limit/x.max_series_per_metrics: unknown key (expected one "
            "of: max_label_values, max_refused_series, max_series, max_series_per_metric, "
            "max_tenants, on_limit, per_label, telemetry_metrics, tenant_attribute, window, "
            "window_type)",
        ),
    ],
)
def test_errors_name_the_key_path(body: str, expected: str) -> None:
    assert expected in problems(body)
