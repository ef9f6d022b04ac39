"""`--set key.path=value` overrides (the Collector's `--set`), applied before validation."""

from __future__ import annotations

import pytest

from metricgate.config import load_config_text
from metricgate.config.overrides import apply_overrides
from metricgate.errors import ConfigError
from tests.support.capture import registry_with_capture

BASE = """
receivers: {inject: {}}
processors:
  cardinality_limit: {max_series: 10}
exporters:
  capture: {}
service:
  pipelines:
    metrics: {receivers: [inject], processors: [cardinality_limit], exporters: [capture]}
  telemetry: {metrics: {address: ""}}
"""


def test_values_are_yaml_scalars_lists_and_maps() -> None:
    raw = {"a": {"b": 1}}
    out = apply_overrides(
        raw, ["a.b=2", "a.c=true", "a.d=[x, 'y']", "a.e={k: 5s}", "a.f=text", "a.g="], []
    )
    assert out == {
        "a": {"b": 2, "c": True, "d": ["x", "y"], "e": {"k": "5s"}, "f": "text", "g": None}
    }
    assert raw == {"a": {"b": 1}}  # the tree given is left alone


def test_missing_maps_are_created_and_ids_with_a_slash_are_one_key() -> None:
    out = apply_overrides({}, ["exporters.prometheus_remote_write/x.headers.X-Team=blue"], [])
    assert out == {"exporters": {"prometheus_remote_write/x": {"headers": {"X-Team": "blue"}}}}


def test_later_overrides_win() -> None:
    assert apply_overrides({}, ["a=1", "a=2"], []) == {"a": 2}


def test_an_override_applies_before_validation() -> None:
    config = load_config_text(
        BASE, registry_with_capture(), {}, overrides=["processors.cardinality_limit.max_series=99"]
    )
    limiter = config.processors["cardinality_limit"].config
    assert limiter.max_series == 99  # type: ignore[attr-defined]


def test_an_invalid_value_is_reported_at_its_key_path() -> None:
    with pytest.raises(ConfigError) as error:
        load_config_text(
            BASE,
            registry_with_capture(),
            {},
            overrides=["processors.cardinality_limit.max_series=lots"],
        )
    problems = error.value.problems
    assert any(p.startswith("processors.cardinality_limit.max_series:") for p in problems)


def test_bad_paths_are_listed_with_the_validation_problems() -> None:
    with pytest.raises(ConfigError) as error:
        load_config_text(
            BASE,
            registry_with_capture(),
            {},
            overrides=[
                "processors.cardinality_limit.max_series=lots",
                "service.pipelines.metrics.receivers.x=1",
            ],
        )
    problems = error.value.problems
    assert problems[0].startswith("service.pipelines.metrics.receivers: expected a mapping")
    assert any(p.startswith("processors.cardinality_limit.max_series:") for p in problems)


def test_a_bad_path_is_an_error_naming_it() -> None:
    problems: list[str] = []
    apply_overrides(
        {"service": {"pipelines": {"metrics": {"receivers": ["inject"]}}}},
        ["service.pipelines.metrics.receivers.x=1", "nodots=", "a..b=1", "no-equals-sign"],
        problems,
    )
    assert problems[0] == (
        "service.pipelines.metrics.receivers: expected a mapping to set "
        "service.pipelines.metrics.receivers.x in (--set "
        "service.pipelines.metrics.receivers.x=1), got a list"
    )
    assert any("--set a..b=1" in p for p in problems)
    assert any("--set no-equals-sign" in p for p in problems)
    assert len(problems) == 3  # `nodots=` is a valid override (top-level key set to null)
