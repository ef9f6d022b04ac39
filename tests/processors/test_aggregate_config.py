"""The aggregate processor's config (errors name the key path), output parsing, vmrange buckets."""

from __future__ import annotations

import itertools

import pytest

from metricgate.config import load_config_text
from metricgate.errors import ConfigError
from metricgate.processors.aggregate import AggregateConfig, parse_output
from metricgate.processors.aggregate.outputs import OutputKind
from metricgate.processors.aggregate.vmrange import LOWER, UPPER, bucket_index, bucket_label
from tests.support.capture import registry_with_capture

TEMPLATE = """
receivers: {inject: {}}
processors:
  aggregate:
    rules:
      - %s
exporters: {capture: {}}
service:
  pipelines:
    metrics: {receivers: [inject], processors: [aggregate], exporters: [capture]}
"""


def problems(rule: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config_text(TEMPLATE % rule, registry_with_capture(), {})
    return info.value.problems


def test_a_valid_rule_has_vmagent_defaults() -> None:
    config = load_config_text(
        TEMPLATE % "{match: x, interval: 1m, outputs: [total]}", registry_with_capture(), {}
    )
    rule = config.processors["aggregate"].config.rules[0]  # type: ignore[attr-defined]
    assert rule.staleness_s == 120.0  # 2 x interval, as vmagent
    assert rule.ignore_first_sample_s == 120.0  # = staleness_interval, as vmagent
    assert (rule.keep_input, rule.flush_on_shutdown, rule.ignore_old_samples) == (
        False,
        True,
        False,
    )
    assert rule.match == ["x"]


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (
            "{interval: 1m, outputs: [total, maxx]}",
            "processors.aggregate.rules[0].outputs[1]: unknown output 'maxx' (expected one of:",
        ),
        (
            "{interval: 1m, outputs: ['quantiles(0.5, 1.5)']}",
            "processors.aggregate.rules[0].outputs[0]: quantile 1.5 is outside [0, 1]",
        ),
        (
            "{interval: 1m, outputs: [max, max]}",
            "processors.aggregate.rules[0].outputs: output 'max' is listed twice",
        ),
        (
            "{interval: 1m, by: [a], without: [b], outputs: [max]}",
            "processors.aggregate.rules[0].without: cannot be combined with `by`",
        ),
        (
            "{interval: 1m, keep_metric_names: true, outputs: [max, min]}",
            "processors.aggregate.rules[0].keep_metric_names: needs exactly one output, got 2",
        ),
        (
            "{interval: 1m, keep_metric_names: true, keep_input: true, outputs: [max]}",
            "processors.aggregate.rules[0].keep_input: cannot be combined with keep_metric_names",
        ),
        (
            "{interval: soon, outputs: [max]}",
            "processors.aggregate.rules[0].interval: expected a duration like 30s or 5m",
        ),
        (
            "{interval: 500ms, outputs: [max]}",
            "processors.aggregate.rules[0].interval: expected an interval of at least 1s",
        ),
        (
            "{interval: 1m, staleness_interval: 30s, outputs: [max]}",
            "processors.aggregate.rules[0].staleness_interval: must be at least the interval",
        ),
        (
            "{match: ['ok', 'x{a=1}'], interval: 1m, outputs: [max]}",
            "processors.aggregate.rules[0].match[1]: invalid series selector 'x{a=1}'",
        ),
        ("{outputs: [max]}", "processors.aggregate.rules[0].interval: required key is missing"),
        (
            "{interval: 1m, outputs: [max], bogus: 1}",
            "processors.aggregate.rules[0].bogus: unknown key",
        ),
    ],
)
def test_config_errors_name_the_key_path(rule: str, expected: str) -> None:
    found = problems(rule)
    assert any(p.startswith(expected) for p in found), found


def test_outputs_parse_like_vmagent() -> None:
    quantiles = parse_output("quantiles(0.50, 0.99)")
    assert quantiles.kind is OutputKind.QUANTILES
    assert quantiles.phis == (("0.50", 0.5), ("0.99", 0.99))
    assert parse_output(" rate_sum ").kind is OutputKind.RATE_SUM
    with pytest.raises(ValueError, match="expected quantiles"):
        parse_output("quantiles")


def test_numeric_intervals_are_spelled_for_names() -> None:
    config = AggregateConfig.model_validate(
        {"rules": [{"interval": n, "outputs": ["max"]} for n in (60, 90, 3600, 1.5)]}
    )
    assert [r.interval for r in config.rules] == ["1m", "90s", "1h", "1500ms"]


def test_vmrange_buckets() -> None:
    assert bucket_label(bucket_index(1.0)) == "8.799e-01...1.000e+00"  # type: ignore[arg-type]
    assert bucket_label(bucket_index(1.05)) == "1.000e+00...1.136e+00"  # type: ignore[arg-type]
    assert bucket_index(0.0) == LOWER and bucket_label(LOWER) == "0...1.000e-09"
    assert bucket_index(1e19) == UPPER and bucket_label(UPPER) == "1.000e+18...+Inf"
    assert bucket_index(-1.0) is None and bucket_index(float("nan")) is None
    labels = [bucket_label(i) for i in range(LOWER, UPPER + 1)]
    assert len(set(labels)) == len(labels)
    ends = [label.split("...") for label in labels]
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ends))
