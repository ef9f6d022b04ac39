"""Config validation of the relabel processor: Prometheus' rules, errors that name the key path."""

from __future__ import annotations

import pytest

from metricgate.config import load_config_text
from metricgate.errors import ConfigError
from metricgate.processors.relabel import RelabelConfig
from tests.support.capture import registry_with_capture


def load(body: str) -> RelabelConfig:
    text = f"""
receivers: {{inject: {{}}}}
processors:
  relabel/x:
{body}
exporters: {{capture: {{}}}}
service: {{pipelines: {{metrics: {{receivers: [inject], processors: [relabel/x],
  exporters: [capture]}}}}}}
"""
    config = load_config_text(text, registry_with_capture(), {})
    relabel = config.processors["relabel/x"].config
    assert isinstance(relabel, RelabelConfig)
    return relabel


def problems(body: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(body)
    return info.value.problems


P = "processors.relabel/x.relabel_configs"


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        (
            "[{source_labels: [a], regex: '(a'}]",
            f"{P}[0].regex: invalid regex '(a': missing closing )",
        ),
        (
            r"[{action: keep}, {source_labels: [a], regex: '(\w+)\1'}]",
            f"{P}[1].regex: invalid regex '(\\w+)\\1': backreference \\1 is not supported: "
            "RE2 (used by Prometheus) does not support it",
        ),
        (
            "[{action: keep, regex: '(?=x)'}]",
            f"{P}[0].regex: invalid regex '(?=x)': lookahead (?=...) is not supported: "
            "RE2 (used by Prometheus) does not support it",
        ),
        ("[{action: frobnicate}]", f"{P}[0].action: unknown relabel action 'frobnicate'"),
        (
            "[{action: keep}, {action: keep}, {action: hashmod, source_labels: [a], "
            "target_label: shard}]",
            f"{P}[2].modulus: required for action hashmod (a positive integer)",
        ),
        ("[{source_labels: [a]}]", f"{P}[0].target_label: required for action replace"),
        ("[{action: lowercase, source_labels: [a]}]", f"{P}[0].target_label: required for action"),
        ("[{action: keepequal, source_labels: [a]}]", f"{P}[0].target_label: required for action"),
        (
            "[{target_label: 'a-b'}]",
            f"{P}[0].target_label: 'a-b' is not a valid label name for action replace",
        ),
        ("[{target_label: '0$$1'}]", f"{P}[0].target_label: '0$1' is not a valid label name"),
        (
            "[{action: lowercase, source_labels: [a], target_label: b, replacement: x}]",
            f"{P}[0].replacement: not allowed for action lowercase",
        ),
        (
            "[{action: labeldrop, regex: a, source_labels: [a]}]",
            f"{P}[0].source_labels: not allowed",
        ),
        ("[{action: labelkeep, regex: a, target_label: a}]", f"{P}[0].target_label: not allowed"),
        ("[{action: labelkeep, regex: a, separator: ','}]", f"{P}[0].separator: not allowed"),
        (
            "[{action: dropequal, source_labels: [a], target_label: b, regex: x}]",
            f"{P}[0].regex: not allowed for action dropequal",
        ),
        ("[{action: labelmap, regex: a, replacement: 'a-b'}]", f"{P}[0].replacement: 'a-b' is"),
        ("[{source_labels: [a.b], target_label: c}]", f"{P}[0].source_labels: invalid label name"),
        (
            "[{action: hashmod, source_labels: [a], target_label: b, modulus: -1}]",
            f"{P}[0].modulus:",
        ),
        ("[{action: keep_metrics}]", f"{P}[0].regex: required for action keep_metrics"),
        ("[{action: drop_if_equal, source_labels: [a]}]", f"{P}[0].source_labels: at least two"),
        (
            """[{action: drop, if: 'foo{bar=}'}]""",
            f"{P}[0].if: invalid series selector 'foo{{bar=}}': expected a quoted string",
        ),
        ("[{action: drop, bogus: 1}]", f"{P}[0].bogus: unknown key"),
    ],
)
def test_errors_name_the_key_path(rules: str, message: str) -> None:
    found = problems(f"    relabel_configs: {rules}")
    assert any(line.startswith(message) for line in found), found


def test_every_bad_rule_is_reported_at_once() -> None:
    found = problems("    relabel_configs: [{action: nope}, {source_labels: [a]}, {regex: '['}]")
    assert [line.split(":")[0] for line in found] == [
        f"{P}[0].action",
        f"{P}[1].target_label",
        f"{P}[2].regex",
    ]


def test_defaults_are_prometheus_defaults() -> None:
    (rule,) = load("    relabel_configs: [{target_label: x}]").rules
    assert (rule.action, rule.separator, rule.regex_source, rule.replacement) == (
        "replace",
        ";",
        "(.*)",
        "$1",
    )


def test_metric_relabel_configs_is_an_alias_but_not_both() -> None:
    config = load("    metric_relabel_configs: [{action: drop, source_labels: [a], regex: x}]")
    assert [rule.action for rule in config.rules] == ["drop"]
    found = problems(
        "    relabel_configs: [{action: keep}]\n    metric_relabel_configs: [{action: keep}]"
    )
    assert found == [
        "processors.relabel/x.metric_relabel_configs: "
        "give either relabel_configs or metric_relabel_configs, not both"
    ]


def test_rules_are_required_but_may_be_an_empty_list() -> None:
    assert problems("    {}") == [f"{P}: required key is missing"]
    assert problems("    {max_cached_series: 10}") == [f"{P}: required key is missing"]
    assert load("    relabel_configs: []").rules == []
    assert load("    metric_relabel_configs: []").rules == []


def test_yaml_scalars_and_lists_become_regex_text_like_in_vmagent() -> None:
    config = load("    relabel_configs: [{action: keep, regex: [200, 2.50, true, 'x']}]")
    assert config.rules[0].regex == "200|2.5|true|x"
    assert config.rules[0].action == "keep"
    assert load("    relabel_configs: [{action: KEEP}]").rules[0].action == "keep"


def test_dollar_braces_paste_verbatim_and_escapes_still_work() -> None:
    # `${1}` has no scheme, so the config loader leaves it for the relabel engine; `$$` is `$`.
    config = load(
        "    relabel_configs: [{source_labels: [a], regex: '(.)', target_label: b, "
        "replacement: 'x$${1}', separator: '$$'}]"
    )
    assert config.rules[0].replacement == "x${1}"
    pasted = load(
        "    relabel_configs: [{source_labels: [a], target_label: b, replacement: '${1}'}]"
    )
    assert pasted.rules[0].replacement == "${1}"
